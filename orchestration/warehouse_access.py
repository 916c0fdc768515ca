"""Short-lived warehouse connections for the orchestration's own reads and writes.

DuckDB admits one writing process: dbt (a subprocess during a run) holds the file while it runs,
so the orchestration opens a connection only around each small read or write, never while dbt
runs, and waits a while when another process has the file locked. On Spark each connection
first forgets what the process's session cached of the tables it reads (those the caller names,
else every table of the two schemas), so it reads what the run's dbt child, other runs or the
ingestion wrote since (warehouse.spark.refresh_tables).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from warehouse import Warehouse, WarehouseConfig, connect
from warehouse.spark import refresh_tables

LOCK_WAIT_SECONDS = 30.0


@contextmanager
def open_warehouse(
    config: WarehouseConfig | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    reads: Iterable[str] | None = None,
) -> Iterator[Warehouse]:
    """Connect (waiting while another process holds DuckDB's lock, forgetting Spark's cached
    tables: `reads`, the ``schema.table`` names the caller reads, or all); close on exit."""
    wh = connect(config, read_only=read_only, wait_seconds=wait_seconds)
    try:
        if wh.dialect == "spark":
            refresh_tables(wh, reads)
        yield wh
    finally:
        wh.close()
