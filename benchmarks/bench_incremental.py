"""A one-day window re-run against a full build of the same history, measured in one run.

    .venv/bin/python benchmarks/bench_incremental.py [--target postgres|duckdb] [--events 2000000]

Loads a synthetic history (about --events deliveries), times a full `dbt build`, then re-runs
one day in the middle of the history (`--vars {min_date, max_date}`) three times and reports the
median as a ratio of the full build. dbt's own start-up and parse are in both timings; the
model-only figure (sum of the nodes' execution times) is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, scratch_duckdb, scratch_postgres

from metrics_events import GeneratorConfig, ensure_source_table, generate_events, load_events
from warehouse import WarehouseConfig, connect
from warehouse.dbt_runner import run_dbt, window_vars


def _history(events: int) -> GeneratorConfig:
    days = 180
    # The generator's trend and weekend dip average about 1.25x the first day's volume.
    per_day = max(10, round(events / days / 1.25))
    return GeneratorConfig(start=date(2025, 1, 1), days=days, events_per_day=per_day, seed=3)


def _timed_build(vars_: dict[str, str] | None, target_path: Path) -> tuple[float, float]:
    """(wall seconds of the dbt invocation, seconds spent executing nodes)."""
    began = time.perf_counter()
    summary = run_dbt("build", vars=vars_, target_path=target_path)
    return time.perf_counter() - began, summary.node_seconds


def run(target: str, events: int) -> list[tuple[str, str, str, str]]:
    config = _history(events)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = scratch_postgres() if target == "postgres" else scratch_duckdb(Path(tmp))
        with scratch:
            began = time.perf_counter()
            with connect(WarehouseConfig()) as wh:
                ensure_source_table(wh)
                loaded = load_events(wh, generate_events(config))
            print(
                f"loaded {loaded:,} event deliveries into {target} in "
                f"{time.perf_counter() - began:.0f}s",
                flush=True,
            )
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
        (
            f"{target}: re-run / full build (nodes only)",
            f"{ratio_nodes:.3f}",
            "< 0.333",
            "PASS" if ratio_nodes < 1 / 3 else "BELOW TARGET",
        ),
    ]


def _prepare_history(history_days: int, per_day: int, tmp: Path) -> dict[str, str]:
    """Load and fully build a history ending 2025-06-30 in the current scratch warehouse."""
    end = date(2025, 6, 30)
    config = GeneratorConfig(
        start=end - timedelta(days=history_days),
        days=history_days,
        events_per_day=per_day,
        daily_growth=0.0,
        seed=5,
    )
    with connect(WarehouseConfig()) as wh:
        ensure_source_table(wh)
        load_events(wh, generate_events(config))
    _timed_build(None, tmp / f"dbt_target_{history_days}")
    return {
        key: os.environ[key]
        for key in ("METRICS_TARGET", "METRICS_DUCKDB_PATH", "PGDATABASE")
        if key in os.environ
    }


def flat(target: str, per_day: int, repeat: int = 5) -> list[tuple[str, str, str, str]]:
    """A one-day re-run should cost the same whatever the length of the history.

    Both histories are built first; then the re-runs alternate between them so that the
    machine's background load falls on both alike.
    """
    last, end = date(2025, 6, 29), date(2025, 6, 30)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        envs = {}
        for days in (30, 120):
            if target == "postgres":
                stack.enter_context(scratch_postgres())
            else:
                stack.enter_context(scratch_duckdb(Path(tmp)))
            envs[days] = _prepare_history(days, per_day, Path(tmp))
            print(f"{target}: built a {days}-day history", flush=True)
        samples: dict[int, list[float]] = {30: [], 120: []}
        for _ in range(repeat):
            for days in (30, 120):
                os.environ.update(envs[days])
                wall, _ = _timed_build(window_vars(last, end), Path(tmp) / f"dbt_target_{days}")
                samples[days].append(wall)
    short, long = statistics.median(samples[30]), statistics.median(samples[120])
    ratio = long / short
    print(f"{target}: one-day re-run, 30 days of history {short:.2f}s, 120 days {long:.2f}s")
    return [
        (f"{target}: one-day re-run, 30 days of history", f"{short:.2f}s", "", ""),
        (f"{target}: one-day re-run, 120 days of history", f"{long:.2f}s", "", ""),
        (
            f"{target}: 120 days / 30 days",
            f"{ratio:.2f}",
            "<= 1.3",
            "PASS" if ratio <= 1.3 else "BELOW TARGET",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("postgres", "duckdb"), default="postgres")
    parser.add_argument(
        "--events",
        type=int,
        default=2_000_000,
        help="deliveries in the history for the re-run vs full build figure",
    )
    parser.add_argument(
        "--flat-per-day",
        type=int,
        default=5000,
        help="events a day for the 30 vs 120 days figure (0 skips it)",
    )
    parser.add_argument("--skip-full", action="store_true", help="only the 30 vs 120 days figure")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str, str]] = []
    if not args.skip_full:
        rows += run(args.target, args.events)
    if args.flat_per_day:
        rows += flat(args.target, args.flat_per_day)
    print_table("Incremental window re-run", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
