"""Instants going to or read back from the warehouse, made aware in UTC (every session's zone).

DuckDB and Spark hand back naive values for UTC instants, PostgreSQL aware ones; code that
compares them with aware instants, stores them or takes their UTC day needs them aware, in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive value is taken as UTC (this project's convention)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
