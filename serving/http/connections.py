"""Warehouse connections for request handlers: pooled on PostgreSQL, shared briefly on DuckDB.

DuckDB admits one writing process, and dbt builds write the same file. The server therefore
opens the file only while requests are running (each handler gets its own cursor of one shared
connection) and lets go of it after `idle_seconds` without requests, so a build can run in
between. Opening the file costs milliseconds, so it is not reopened per request.
PostgreSQL connections are kept in a small pool. Spark is not served (`check_http_target`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from warehouse import Warehouse, WarehouseConfig, WarehouseConfigError, connect


def check_http_target(config: WarehouseConfig) -> None:
    """Refuse METRICS_TARGET=spark up front: the HTTP API keeps its tokens in a table it
    updates, and reads with pooled connections that would not see what dbt rewrote on Spark."""
    if config.target == "spark":
        raise WarehouseConfigError(
            "METRICS_TARGET=spark: the HTTP API (metrics serve, metrics tokens) serves from "
            "PostgreSQL or DuckDB. On Spark, read the rollups with serving.MetricsReader and "
            "custom metrics with `metrics custom calculate` (docs/beyond_one_machine.md)"
        )


class ConnectionPool:
    """Hands out `Warehouse` objects for one request at a time each; thread-safe."""

    def __init__(
        self,
        config: WarehouseConfig,
        *,
        idle_seconds: float = 1.0,
        wait_seconds: float = 10.0,
        keep: int = 8,
    ) -> None:
        check_http_target(config)
        self.config = config
        self.idle_seconds = idle_seconds
        self.wait_seconds = wait_seconds
        self.keep = keep
        self._lock = threading.Lock()
        self._idle: list[Warehouse] = []  # PostgreSQL connections ready for reuse
        self._shared: Warehouse | None = None  # DuckDB: the open file
        self._users = 0
        self._timer: threading.Timer | None = None

    @contextmanager
    def connection(self) -> Iterator[Warehouse]:
        """A connection for the duration of the block (autocommit; `transaction()` works)."""
        if self.config.target == "postgres":
            with self._postgres() as wh:
                yield wh
        else:
            with self._duckdb() as wh:
                yield wh

    @contextmanager
    def _postgres(self) -> Iterator[Warehouse]:
        with self._lock:
            wh = self._idle.pop() if self._idle else None
        if wh is None:
            wh = connect(self.config)
        healthy = False
        try:
            yield wh
            healthy = not wh.raw.closed and wh.raw.autocommit
        finally:
            with self._lock:
                if healthy and len(self._idle) < self.keep:
                    self._idle.append(wh)
                    wh = None
            if wh is not None:
                wh.close()

    def _open_shared(self) -> Warehouse:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._users += 1
            shared = self._shared
        if shared is not None:
            return shared
        try:
            opened = connect(self.config, wait_seconds=self.wait_seconds)
        except BaseException:
            with self._lock:
                self._users -= 1
            raise
        with self._lock:
            if self._shared is None:
                self._shared = opened
                return opened
            shared = self._shared
        opened.close()
        return shared

    def _release_shared(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._shared is not None:
                self._timer = threading.Timer(self.idle_seconds, self._close_if_idle)
                self._timer.daemon = True
                self._timer.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            if self._users or self._shared is None:
                return
            shared, self._shared = self._shared, None
        shared.close()

    @contextmanager
    def _duckdb(self) -> Iterator[Warehouse]:
        shared = self._open_shared()
        try:
            cursor: Any = shared.raw.cursor()
            try:
                cursor.execute("set timezone = 'UTC'")
                yield Warehouse(self.config, cursor)
            finally:
                cursor.close()
        finally:
            self._release_shared()

    def close(self) -> None:
        """Close every connection this pool holds."""
        with self._lock:
            idle, self._idle = self._idle, []
            shared, self._shared = self._shared, None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for wh in idle:
            wh.close()
        if shared is not None:
            shared.close()
