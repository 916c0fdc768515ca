"""`metrics-generate-events`: write a synthetic event stream into the configured warehouse.

Everything is checked before anything is written (sizes, dates, configuration, the connection);
`--replace` empties the table and loads the new stream in one transaction, so a failure leaves
the old rows in place. Bad input ends with a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from metrics_events.generator import GeneratorConfig, generate_events
from metrics_events.source import ensure_source_table, load_events
from warehouse import (
    Warehouse,
    WarehouseBusyError,
    WarehouseConfig,
    WarehouseConfigError,
    WarehouseUnavailableError,
    connect,
)

PROG = "metrics-generate-events"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Generate realistic product events into {METRICS_SOURCE_SCHEMA}.events "
        "of the warehouse METRICS_TARGET points at.",
    )
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2025, 1, 1),
        help="first day (YYYY-MM-DD), default 2025-01-01",
    )
    parser.add_argument("--days", type=int, default=120, help="number of days, default 120")
    parser.add_argument(
        "--events-per-day",
        type=int,
        default=2000,
        help="weekday volume on the first day, default 2000",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed, default 7")
    parser.add_argument("--replace", action="store_true", help="empty the source table first")
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _write(wh: Warehouse, config: GeneratorConfig, *, replace: bool) -> int:
    """Load the stream; with `replace`, delete the old rows in the same transaction (on Spark,
    which has neither transactions nor row deletes, the table is truncated first)."""

    def progress(rows: int) -> None:
        print(f"  loaded {rows:,} rows ...", flush=True)

    if not replace:
        return load_events(wh, generate_events(config), progress=progress)
    with wh.transaction():
        empty = "truncate table" if wh.dialect == "spark" else "delete from"
        wh.execute(f"{empty} {wh.source_schema}.events")
        return load_events(wh, generate_events(config), progress=progress)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = GeneratorConfig(
            start=args.start, days=args.days, events_per_day=args.events_per_day, seed=args.seed
        )
    except ValueError as error:
        return _fail(
            f"{error} (--start {args.start} --days {args.days} "
            f"--events-per-day {args.events_per_day})"
        )
    try:
        wh_config = WarehouseConfig()
    except WarehouseConfigError as error:
        return _fail(str(error))
    began = time.perf_counter()
    try:
        with connect(wh_config, wait_seconds=10) as wh:
            ensure_source_table(wh)
            rows = _write(wh, config, replace=args.replace)
    except (WarehouseUnavailableError, WarehouseBusyError) as error:
        return _fail(str(error))
    elapsed = time.perf_counter() - began
    print(
        f"wrote {rows:,} event deliveries for {args.days} days from {args.start} into "
        f"{wh_config.target}:{wh_config.source_schema}.events in {elapsed:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
