"""Short-lived warehouse connections for the orchestration's own reads and writes.

DuckDB admits one writing process: dbt (a subprocess during a run) holds the file while it runs,
so the orchestration opens a connection only around each small read or write, never while dbt
runs, and waits briefly when another process has the file locked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from warehouse import Warehouse, WarehouseConfig, connect

LOCK_WAIT_SECONDS = 30.0


def _is_lock_error(error: Exception) -> bool:
    text = str(error).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


@contextmanager
def open_warehouse(
    config: WarehouseConfig | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_WAIT_SECONDS,
) -> Iterator[Warehouse]:
    """Connect, retrying while another process holds DuckDB's lock; close on exit."""
    config = config or WarehouseConfig()
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            wh = connect(config, read_only=read_only)
            break
        except Exception as error:  # duckdb.IOException; psycopg2 errors are not retried
            if not _is_lock_error(error) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield wh
    finally:
        wh.close()
