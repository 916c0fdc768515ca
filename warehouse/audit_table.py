"""The job audit log's table and columns (docs/reference.md), in one place for the orchestration
that writes it and the readers (the HTTP API, the custom metrics' freshness check)."""

from __future__ import annotations

from typing import Final

AUDIT_TABLE: Final = "metrics_aggregation_jobs_log"
AUDIT_COLUMNS: Final = (
    "log_id",
    "job_name",
    "grain",
    "partition_range_start",
    "partition_range_end",
    "window_start",
    "window_end",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "rows_written",
    "error",
    "dagster_run_id",
    "attempt",
)
