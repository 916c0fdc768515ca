"""The project's configuration as the contract defines it (environment variables, defaults)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables inside the block; restore afterwards.

    How a process points the configuration at another warehouse, or hands a child process
    (dbt) its settings, for a while.
    """
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, previous in saved.items():
            if previous is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = previous


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class WarehouseConfig:
    """Where the warehouse is and how its schemas are named; read from the environment."""

    target: str = field(default_factory=lambda: _env("METRICS_TARGET", "duckdb"))
    duckdb_path: str = field(
        default_factory=lambda: _env("METRICS_DUCKDB_PATH", ".data/warehouse.duckdb")
    )
    source_schema: str = field(default_factory=lambda: _env("METRICS_SOURCE_SCHEMA", "raw"))
    schema: str = field(default_factory=lambda: _env("METRICS_SCHEMA", "metrics"))
    week_start: str = field(default_factory=lambda: _env("METRICS_WEEK_START", "monday").lower())

    def __post_init__(self) -> None:
        if self.target not in ("duckdb", "postgres"):
            raise ValueError(f"METRICS_TARGET must be 'duckdb' or 'postgres', not {self.target!r}")
        if self.week_start not in WEEKDAYS:
            raise ValueError(
                f"METRICS_WEEK_START must be a weekday name (monday ... sunday), "
                f"not {self.week_start!r}"
            )
        for name in (self.source_schema, self.schema):
            if not name.replace("_", "").isalnum() or name[0].isdigit():
                raise ValueError(f"schema name {name!r} must be a plain SQL identifier")

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday, as Python's date.weekday()."""
        return WEEKDAYS.index(self.week_start)

    @property
    def duckdb_file(self) -> Path:
        return Path(self.duckdb_path)

    def pg_params(self) -> dict[str, str]:
        """libpq parameters from the standard PG* variables; empty values fall back to libpq."""
        params: dict[str, str] = {}
        for key, var in (
            ("host", "PGHOST"),
            ("port", "PGPORT"),
            ("user", "PGUSER"),
            ("password", "PGPASSWORD"),
            ("dbname", "PGDATABASE"),
        ):
            if os.environ.get(var):
                params[key] = os.environ[var]
        return params
