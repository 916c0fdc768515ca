"""`make demo`: generate events into the embedded warehouse, build the rollups, print a report."""

from __future__ import annotations

import os
import time
from datetime import date

from metrics_events import GeneratorConfig, ensure_source_table, generate_events, load_events
from warehouse import WarehouseConfig, connect
from warehouse.dbt_runner import run_dbt
from warehouse.report import build_report


def main() -> int:
    os.environ.setdefault("METRICS_TARGET", "duckdb")
    config = WarehouseConfig()
    days = int(os.environ.get("METRICS_DEMO_DAYS", "120"))
    generator = GeneratorConfig(start=date(2025, 1, 1), days=days, events_per_day=1500)
    began = time.perf_counter()
    print(f"[1/3] generating {days} days of events into {config.target} ...", flush=True)
    with connect(config) as wh:
        ensure_source_table(wh)
        wh.execute(f"delete from {wh.source_schema}.events")
        rows = load_events(wh, generate_events(generator))
    print(f"      {rows:,} event deliveries written", flush=True)
    print("[2/3] building every daily, weekly and monthly period with dbt ...", flush=True)
    run_dbt("build", extra_args=["--full-refresh"])
    print("[3/3] report", flush=True)
    with connect(config) as wh:
        print(build_report(wh))
    print(f"\ndone in {time.perf_counter() - began:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
