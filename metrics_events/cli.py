"""`metrics-generate-events`: write a synthetic event stream into the configured warehouse."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

from metrics_events.generator import GeneratorConfig, generate_events
from metrics_events.source import ensure_source_table, load_events
from warehouse import WarehouseConfig, connect


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metrics-generate-events",
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.days <= 0 or args.events_per_day <= 0:
        print("--days and --events-per-day must be positive", file=sys.stderr)
        return 2
    config = GeneratorConfig(
        start=args.start, days=args.days, events_per_day=args.events_per_day, seed=args.seed
    )
    wh_config = WarehouseConfig()
    began = time.perf_counter()
    with connect(wh_config) as wh:
        ensure_source_table(wh)
        if args.replace:
            wh.execute(f"delete from {wh.source_schema}.events")

        def progress(rows: int) -> None:
            print(f"  loaded {rows:,} rows ...", flush=True)

        rows = load_events(wh, generate_events(config), progress=progress)
    elapsed = time.perf_counter() - began
    print(
        f"wrote {rows:,} event deliveries for {args.days} days from {args.start} into "
        f"{wh_config.target}:{wh_config.source_schema}.events in {elapsed:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
