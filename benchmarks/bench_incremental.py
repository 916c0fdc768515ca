"""A one-day window re-run against a full build of the same history, measured in one run.

    .venv/bin/python benchmarks/bench_incremental.py [--target postgres|duckdb] [--events 2000000]

Loads a synthetic history (about --events deliveries), times a full `dbt build`, then re-runs
one day in the middle of the history (`--vars {min_date, max_date}`) three times and reports the
median as a ratio of the full build. dbt's own start-up and parse are in both timings; the
model-only figure (sum of the nodes' execution times) is printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, scratch_duckdb, scratch_postgres

from metrics_events import GeneratorConfig, ensure_source_table, generate_events, load_events
from warehouse import WarehouseConfig, connect
from warehouse.dbt_runner import window_vars


def _history(events: int) -> GeneratorConfig:
    days = 180
    # The generator's trend and weekend dip average about 1.25x the first day's volume.
    per_day = max(10, round(events / days / 1.25))
    return GeneratorConfig(start=date(2025, 1, 1), days=days, events_per_day=per_day, seed=3)


def _timed_build(vars_: dict[str, str] | None, target_path: Path) -> tuple[float, float]:
    """(wall seconds of the dbt invocation, seconds spent executing nodes)."""
    import json

    from dbt.cli.main import dbtRunner

    from warehouse.dbt_runner import DBT_PROJECT_DIR

    args = ["build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--quiet", "--target-path", str(target_path)]
    if vars_:
        args += ["--vars", json.dumps(vars_)]
    began = time.perf_counter()
    result = dbtRunner().invoke(args)
    wall = time.perf_counter() - began
    if not result.success:
        raise SystemExit(f"dbt build failed: {result.exception}")
    nodes = sum(float(getattr(r, "execution_time", 0.0) or 0.0) for r in result.result.results)
    return wall, nodes


def run(target: str, events: int) -> list[tuple[str, str, str, str]]:
    config = _history(events)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = scratch_postgres() if target == "postgres" else scratch_duckdb(Path(tmp))
        with scratch:
            began = time.perf_counter()
            with connect(WarehouseConfig()) as wh:
                ensure_source_table(wh)
                loaded = load_events(wh, generate_events(config))
            print(f"loaded {loaded:,} event deliveries into {target} in "
                  f"{time.perf_counter() - began:.0f}s", flush=True)
            target_path = Path(tmp) / "dbt_target"
            full_wall, full_nodes = _timed_build(None, target_path)
            print(f"full build: {full_wall:.1f}s ({full_nodes:.1f}s in nodes)", flush=True)
            day = config.start + timedelta(days=config.days // 2)
            walls, node_times = [], []
            for _ in range(3):
                wall, nodes = _timed_build(window_vars(day, day + timedelta(days=1)), target_path)
                walls.append(wall)
                node_times.append(nodes)
            one_wall, one_nodes = statistics.median(walls), statistics.median(node_times)
            print(f"one-day re-run ({day}): {one_wall:.1f}s ({one_nodes:.1f}s in models and tests)")
    ratio_wall = one_wall / full_wall
    ratio_nodes = one_nodes / full_nodes
    verdict = "PASS" if ratio_wall < 1 / 3 else "BELOW TARGET"
    return [
        (f"{target}: full build, {loaded:,} deliveries", f"{full_wall:.1f}s", "", ""),
        (f"{target}: one-day re-run (median of 3)", f"{one_wall:.1f}s", "", ""),
        (f"{target}: re-run / full build (wall)", f"{ratio_wall:.3f}", "< 0.333", verdict),
        (f"{target}: re-run / full build (nodes only)", f"{ratio_nodes:.3f}", "< 0.333",
         "PASS" if ratio_nodes < 1 / 3 else "BELOW TARGET"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("postgres", "duckdb"), default="postgres")
    parser.add_argument("--events", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    rows = run(args.target, args.events)
    print_table("Incremental window re-run vs full build", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
