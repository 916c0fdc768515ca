"""Short-lived warehouse connections for the orchestration's own reads and writes.

DuckDB admits one writing process: dbt (a subprocess during a run) holds the file while it runs,
so the orchestration opens a connection only around each small read or write, never while dbt
runs, and waits a while when another process has the file locked. On Spark each connection
first forgets what the process's session cached of the tables it reads
(`warehouse.open_warehouse`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager

from warehouse import Warehouse, WarehouseConfig
from warehouse import open_warehouse as _open

LOCK_WAIT_SECONDS = 30.0


def open_warehouse(
    config: WarehouseConfig | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    reads: Iterable[str] | None = None,
) -> AbstractContextManager[Warehouse]:
    """`warehouse.open_warehouse`, waiting by default up to LOCK_WAIT_SECONDS for DuckDB's
    lock."""
    return _open(config, read_only=read_only, wait_seconds=wait_seconds, reads=reads)
