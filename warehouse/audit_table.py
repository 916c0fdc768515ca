"""The job audit log's table and columns (docs/reference.md), in one place for the orchestration
that writes it and the readers (the HTTP API, the custom metrics' freshness check)."""

from __future__ import annotations

from typing import Final, NamedTuple

AUDIT_TABLE: Final = "metrics_aggregation_jobs_log"


class AuditColumn(NamedTuple):
    """One column: its type on PostgreSQL and DuckDB, its type on Spark, and its constraint
    (PostgreSQL and DuckDB only: Spark's Parquet tables enforce none)."""

    name: str
    sql_type: str
    spark_type: str
    constraint: str = "not null"


# In table order; both DDLs (orchestration.audit_log) are made from this list.
AUDIT_TYPED_COLUMNS: Final = (
    AuditColumn("log_id", "text", "string", "primary key"),
    AuditColumn("job_name", "text", "string"),
    AuditColumn("grain", "text", "string"),
    AuditColumn("partition_range_start", "date", "date"),
    AuditColumn("partition_range_end", "date", "date"),
    AuditColumn("window_start", "date", "date"),
    AuditColumn("window_end", "date", "date"),
    AuditColumn("status", "text", "string"),
    AuditColumn("started_at", "timestamptz", "timestamp"),
    AuditColumn("ended_at", "timestamptz", "timestamp", ""),
    AuditColumn("duration_ms", "bigint", "bigint", ""),
    AuditColumn("rows_written", "bigint", "bigint", ""),
    AuditColumn("error", "text", "string", ""),
    AuditColumn("dagster_run_id", "text", "string"),
    AuditColumn("attempt", "integer", "int"),
)
AUDIT_COLUMNS: Final = tuple(column.name for column in AUDIT_TYPED_COLUMNS)
