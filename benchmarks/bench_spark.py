"""The rollups on a local Spark session: a full dbt build of N events against the same
aggregation as plain Spark SQL (benchmarks/floor_sql.py), and a one-day window re-run against
the full build. One process, one Spark session, a throwaway warehouse directory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table
from floor_sql import floor_statements

from metrics_events import GeneratorConfig, generate_events, load_events
from warehouse import WarehouseConfig, connect
from warehouse.config import environment
from warehouse.dbt_runner import run_dbt, window_vars

DAYS = 120
START = date(2024, 1, 1)


def _timed(action: Callable[[], object]) -> float:
    """Wall-clock seconds of one run of action."""
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def run(events: int) -> list[tuple[str, str, str, str]]:
    """Floor, full build and one-day re-run of about `events` generated events, as table rows."""
    with tempfile.TemporaryDirectory(prefix="bench_spark_") as tmp:
        settings = {
            "METRICS_TARGET": "spark",
            "METRICS_SPARK_WAREHOUSE_DIR": str(Path(tmp) / "warehouse"),
            "METRICS_SPARK_METASTORE_DIR": str(Path(tmp) / "metastore_db"),
            "METRICS_SCHEMA": "metrics",
            "METRICS_SOURCE_SCHEMA": "raw",
        }
        with environment(settings):
            config = GeneratorConfig(start=START, days=DAYS, events_per_day=events // DAYS, seed=7)
            with connect(WarehouseConfig()) as wh:
                rows = load_events(wh, generate_events(config))
                floor = _timed(
                    lambda: [
                        wh.execute(s) for s in floor_statements("raw.events", "floor", "spark")
                    ]
                )
            target = Path(tmp) / "dbt_target"
            full = _timed(lambda: run_dbt("run", target_path=target))
            day = START + timedelta(days=DAYS // 2)
            one_day = _timed(
                lambda: run_dbt(
                    "run", vars=window_vars(day, day + timedelta(days=1)), target_path=target
                )
            )
            with connect(WarehouseConfig()) as wh:
                for table in ("daily_metrics", "weekly_metrics", "monthly_metrics"):
                    ours = wh.query(f"select count(*) from metrics.{table}")[0][0]
                    theirs = wh.query(f"select count(*) from floor.{table}")[0][0]
                    if ours != theirs:
                        raise SystemExit(f"{table}: {ours} rows, plain SQL {theirs}")
    of = f"{rows:,} deliveries over {DAYS} days"
    ratio = full / floor
    return [
        (f"spark: plain Spark SQL floor ({of})", f"{floor:.1f}s", "", ""),
        (
            f"spark: dbt full build / floor ({of})",
            f"{full:.1f}s = {ratio:.2f}x",
            "within 1.5x",
            "met" if ratio <= 1.5 else "missed",
        ),
        (
            "spark: dbt one-day window re-run / full build",
            f"{one_day:.1f}s = {one_day / full:.2f}x",
            "",
            "",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000, help="events, default 2M")
    args = parser.parse_args(argv)
    print_table("Spark: backfill vs plain Spark SQL, one-day re-run", run(args.events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
