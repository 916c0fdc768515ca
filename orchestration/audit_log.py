"""The job audit log: one row per attempt of every rollup step, in `{METRICS_SCHEMA}`.

A row is inserted as RUNNING before dbt starts and updated when it ends: COMPLETED, or FAILED
with the error (see docs/reference.md), naming the models written before the failure. A retried
step writes a new row with the next attempt number, so FAILED ... COMPLETED histories stay
visible. PARTIAL stays a valid status for rows that earlier versions wrote when some models had
been written before a failure. A worker killed outright (out of memory, SIGKILL, a lost node)
cannot close its row; the next attempt to start closes such rows as FAILED (`close_abandoned`).

On Spark, whose Parquet tables cannot update rows, the table is partitioned by `log_id`: an
attempt's row is its own partition, written when it starts and rewritten when it ends
(`INSERT OVERWRITE ... PARTITION`), so every reader sees the same one row per attempt, with the
same columns, as on PostgreSQL and DuckDB (`log_id` comes last, as Spark keeps partition
columns).

Every read and write reconnects and retries for up to `RETRY_SECONDS` when the warehouse drops
or refuses the connection (a PostgreSQL restart, DuckDB's file held by a build), so the real
cause of a failure reaches the log even when the failure was the warehouse going away.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from orchestration.warehouse_access import open_warehouse
from warehouse import Warehouse, WarehouseConfig
from warehouse.audit_table import AUDIT_COLUMNS, AUDIT_TABLE, AUDIT_TYPED_COLUMNS
from warehouse.connection import WarehouseBusyError, WarehouseUnavailableError
from warehouse.spark import rewrite_partition
from warehouse.timestamps import as_utc

MAX_ERROR_CHARS = 20_000
RETRY_SECONDS = 60.0

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _is_transient(error: BaseException) -> bool:
    """A lost or refused connection, worth a new connection and another try."""
    if isinstance(error, (WarehouseUnavailableError, WarehouseBusyError)):
        return True
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - psycopg2 ships with the project
        return False
    return isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError))


def _retrying(
    config: WarehouseConfig, what: str, action: Callable[[Warehouse], T], budget: float
) -> T:
    """`action` on a fresh connection, again on a new one while the warehouse is unreachable."""
    deadline = time.monotonic() + budget
    delay = 0.25
    while True:
        try:
            with open_warehouse(config, reads=[f"{config.schema}.{AUDIT_TABLE}"]) as wh:
                return action(wh)
        except Exception as error:
            if not _is_transient(error) or time.monotonic() + delay > deadline:
                raise
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            logger.warning("audit log %s: %s; reconnecting in %.2gs", what, first_line, delay)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


class JobStatus(StrEnum):
    """An attempt's state: RUNNING until it ends, then COMPLETED or FAILED (PARTIAL: legacy)."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PARTIAL = "PARTIAL"


@dataclass(frozen=True)
class AuditEntry:
    """What is known when an attempt starts."""

    job_name: str
    grain: str
    partition_range_start: date
    partition_range_end: date
    window_start: date
    window_end: date
    dagster_run_id: str
    attempt: int


def _ddl(schema: str) -> str:
    """The audit table on PostgreSQL and DuckDB, with its constraints."""
    columns = ",\n".join(
        " ".join(filter(None, (c.name, c.sql_type, c.constraint))) for c in AUDIT_TYPED_COLUMNS
    )
    return f"create table if not exists {schema}.{AUDIT_TABLE} (\n{columns}\n)"


def _spark_ddl(schema: str) -> str:
    """The same columns, `log_id` last: Spark keeps a partition column there."""
    ordered = sorted(AUDIT_TYPED_COLUMNS, key=lambda c: c.name == "log_id")
    columns = ",\n".join(f"{c.name} {c.spark_type}" for c in ordered)
    return (
        f"create table if not exists {schema}.{AUDIT_TABLE} (\n{columns}\n)"
        " using parquet partitioned by (log_id)"
    )


def ensure_table(wh: Warehouse) -> None:
    """Create the schema and the audit table if they do not exist."""
    wh.execute(f"create schema if not exists {wh.schema}")
    wh.execute(_spark_ddl(wh.schema) if wh.dialect == "spark" else _ddl(wh.schema))


def _aware(value: Any) -> Any:
    """Instants made aware in UTC (DuckDB and Spark hand back naive ones); the rest as is."""
    return as_utc(value) if isinstance(value, datetime) else value


def _rows(
    wh: Warehouse, where: str, params: dict[str, Any], order_by: str | None = None
) -> list[dict[str, Any]]:
    """Whole rows of the audit table matching `where` (every row if empty), instants aware. On
    Spark an attempt's row is rewritten whole (`_update`), so it is read whole everywhere."""
    condition = f" where {where}" if where else ""
    order = f" order by {order_by}" if order_by else ""
    rows, columns = wh.query_with_columns(
        f"select * from {wh.schema}.{AUDIT_TABLE}{condition}{order}", params
    )
    return [
        {column: _aware(value) for column, value in zip(columns, row, strict=True)} for row in rows
    ]


def _row(wh: Warehouse, log_id: str) -> dict[str, Any] | None:
    """One attempt's row (None: no such row); read once, for `_update` to rewrite on Spark."""
    found = _rows(wh, f"log_id = {wh.param('log_id')}", {"log_id": log_id})
    return found[0] if found else None


def _update(
    wh: Warehouse,
    log_id: str,
    values: dict[str, Any],
    *,
    while_running: bool = False,
    row: dict[str, Any] | None = None,
) -> None:
    """Set columns of one attempt's row (only while it is RUNNING, if asked). On Spark the row
    is rewritten whole: `row`, if the caller has just read it (`_row`), else read here."""
    p = wh.param
    if wh.dialect == "spark":
        row = row or _row(wh, log_id)
        if row and not (while_running and row["status"] != JobStatus.RUNNING):
            table = f"{wh.schema}.{AUDIT_TABLE}"
            rewrite_partition(wh, table, AUDIT_COLUMNS, "log_id", log_id, [{**row, **values}])
        return
    params = {**values, "log_id": log_id}
    condition = ""
    if while_running:
        condition, params["running"] = f" and status = {p('running')}", JobStatus.RUNNING.value
    wh.execute(
        f"update {wh.schema}.{AUDIT_TABLE} set {', '.join(f'{c} = {p(c)}' for c in values)}"
        f" where log_id = {p('log_id')}{condition}",
        params,
    )


class AuditLog:
    """Writes and reads the audit table of the configured warehouse."""

    def __init__(
        self, config: WarehouseConfig | None = None, *, retry_seconds: float = RETRY_SECONDS
    ) -> None:
        self.config = config or WarehouseConfig()
        self.retry_seconds = retry_seconds

    def _do(self, what: str, action: Callable[[Warehouse], T]) -> T:
        return _retrying(self.config, what, action, self.retry_seconds)

    def start(self, entry: AuditEntry) -> str:
        """Record an attempt as RUNNING; returns its log id."""
        log_id = uuid.uuid4().hex
        row = {
            "log_id": log_id,
            "job_name": entry.job_name,
            "grain": entry.grain,
            "partition_range_start": entry.partition_range_start,
            "partition_range_end": entry.partition_range_end,
            "window_start": entry.window_start,
            "window_end": entry.window_end,
            "status": JobStatus.RUNNING.value,
            "started_at": datetime.now(UTC),
            "dagster_run_id": entry.dagster_run_id,
            "attempt": entry.attempt,
        }

        def insert(wh: Warehouse) -> None:
            ensure_table(wh)
            if wh.dialect == "spark":  # the row's own partition: writing it again changes nothing
                table = f"{wh.schema}.{AUDIT_TABLE}"
                rewrite_partition(
                    wh, table, AUDIT_COLUMNS, "log_id", log_id, [dict.fromkeys(AUDIT_COLUMNS) | row]
                )
                return
            p = wh.param
            # A retry after a lost acknowledgement finds its own row: nothing to do then.
            wh.execute(
                f"insert into {wh.schema}.{AUDIT_TABLE} (log_id, job_name, grain,"
                " partition_range_start, partition_range_end, window_start, window_end, status,"
                " started_at, dagster_run_id, attempt) values ("
                f"{p('log_id')}, {p('job_name')}, {p('grain')}, {p('partition_range_start')},"
                f" {p('partition_range_end')}, {p('window_start')}, {p('window_end')},"
                f" {p('status')}, {p('started_at')}, {p('dagster_run_id')}, {p('attempt')})"
                " on conflict (log_id) do nothing",
                row,
            )

        self._do("start", insert)
        return log_id

    def finish(
        self,
        log_id: str,
        status: JobStatus,
        *,
        rows_written: int | None = None,
        error: str | None = None,
    ) -> None:
        """Close an attempt with its final status, rows written and error text."""
        if status is JobStatus.RUNNING:
            raise ValueError("an attempt finishes as COMPLETED, FAILED or PARTIAL")
        ended = datetime.now(UTC)

        def update(wh: Warehouse) -> None:
            row = _row(wh, log_id)
            if row is None:
                raise LookupError(f"no audit log row {log_id}")
            duration_ms = max(0, round((ended - row["started_at"]).total_seconds() * 1000))
            _update(
                wh,
                log_id,
                {
                    "status": status.value,
                    "ended_at": ended,
                    "duration_ms": duration_ms,
                    "rows_written": rows_written,
                    "error": error[:MAX_ERROR_CHARS] if error else None,
                },
                row=row,
            )

        self._do("finish", update)

    def close_abandoned(
        self, run_is_active: Callable[[str], bool], current_run_id: str, current_attempt: int
    ) -> int:
        """Close as FAILED the RUNNING rows no worker will close; returns how many.

        A row is abandoned when its Dagster run is no longer active (`run_is_active` is False:
        finished, or unknown to the instance), or when it is an earlier attempt of the current
        run (a retry starts only after the previous attempt ended). Rows of active runs stay.
        """
        return self._do(
            "close_abandoned",
            lambda wh: self._close_abandoned(wh, run_is_active, current_run_id, current_attempt),
        )

    def _close_abandoned(
        self,
        wh: Warehouse,
        run_is_active: Callable[[str], bool],
        current_run_id: str,
        current_attempt: int,
    ) -> int:
        if not wh.table_exists(wh.schema, AUDIT_TABLE):
            return 0
        running = _rows(wh, f"status = {wh.param('status')}", {"status": JobStatus.RUNNING.value})
        active: dict[str, bool] = {}
        abandoned: list[tuple[dict[str, Any], str]] = []
        for row in running:
            run_id = row["dagster_run_id"]
            if run_id == current_run_id:
                if row["attempt"] < current_attempt:
                    abandoned.append((row, f"attempt {current_attempt} started"))
                continue
            if run_id not in active:
                active[run_id] = run_is_active(run_id)
            if not active[run_id]:
                abandoned.append((row, f"its Dagster run {run_id} is no longer running"))
        ended = datetime.now(UTC)
        for row, reason in abandoned:
            _update(
                wh,
                row["log_id"],
                {
                    "status": JobStatus.FAILED.value,
                    "ended_at": ended,
                    "error": (
                        "the worker running this attempt stopped without recording its end"
                        f" ({reason}); closed by run {current_run_id}; its window is"
                        " rebuilt by the next successful run over it"
                    ),
                },
                while_running=True,
                row=row,
            )
        return len(abandoned)

    def entries(self, dagster_run_id: str | None = None) -> list[dict[str, Any]]:
        """Rows of the audit log (of one run, if given), oldest first."""
        duckdb = self.config.target == "duckdb"
        if duckdb and not self.config.duckdb_file.exists():
            return []
        reads = [f"{self.config.schema}.{AUDIT_TABLE}"]
        with open_warehouse(self.config, read_only=duckdb, reads=reads) as wh:
            if not wh.table_exists(wh.schema, AUDIT_TABLE):
                return []
            where, params = "", {}
            if dagster_run_id is not None:
                where = f"dagster_run_id = {wh.param('run_id')}"
                params = {"run_id": dagster_run_id}
            return _rows(wh, where, params, order_by="started_at, attempt")
