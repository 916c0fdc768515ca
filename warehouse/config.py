"""The project's configuration: environment variables and defaults (docs/reference.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TARGETS = ("duckdb", "postgres", "spark")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class WarehouseConfigError(ValueError):
    """A configuration value is not usable; the message names its environment variable."""


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
    spark_warehouse_dir: str = field(
        default_factory=lambda: _env("METRICS_SPARK_WAREHOUSE_DIR", ".data/spark/warehouse")
    )
    spark_metastore_dir: str = field(
        default_factory=lambda: _env("METRICS_SPARK_METASTORE_DIR", ".data/spark/metastore_db")
    )
    spark_master: str = field(default_factory=lambda: _env("METRICS_SPARK_MASTER", "local[2]"))
    source_schema: str = field(default_factory=lambda: _env("METRICS_SOURCE_SCHEMA", "raw"))
    schema: str = field(default_factory=lambda: _env("METRICS_SCHEMA", "metrics"))
    week_start: str = field(default_factory=lambda: _env("METRICS_WEEK_START", "monday").lower())

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise WarehouseConfigError(
                f"METRICS_TARGET must be 'duckdb', 'postgres' or 'spark', not {self.target!r}"
            )
        if self.week_start not in WEEKDAYS:
            raise WarehouseConfigError(
                f"METRICS_WEEK_START must be a weekday name (monday ... sunday), "
                f"not {self.week_start!r}"
            )
        for variable, name in (
            ("METRICS_SOURCE_SCHEMA", self.source_schema),
            ("METRICS_SCHEMA", self.schema),
        ):
            if not _IDENTIFIER.fullmatch(name):
                raise WarehouseConfigError(
                    f"{variable}={name!r} is not a plain SQL identifier: use 1-63 ASCII letters, "
                    "digits and _, not starting with a digit"
                )
        for variable, path in (
            ("METRICS_DUCKDB_PATH", self.duckdb_path),
            ("METRICS_SPARK_WAREHOUSE_DIR", self.spark_warehouse_dir),
            ("METRICS_SPARK_METASTORE_DIR", self.spark_metastore_dir),
        ):
            if "\x00" in path:
                raise WarehouseConfigError(f"{variable} must not contain a NUL character")
        if ";" in self.spark_metastore_dir:
            # The directory goes into the metastore's JDBC URL, where ';' starts an attribute.
            raise WarehouseConfigError("METRICS_SPARK_METASTORE_DIR must not contain ';'")

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday, as Python's date.weekday()."""
        return WEEKDAYS.index(self.week_start)

    @property
    def duckdb_file(self) -> Path:
        return Path(self.duckdb_path)

    def spark_conf(self) -> dict[str, str]:
        """The Spark session settings (absolute paths) that dbt's profile and Python share."""
        warehouse_dir = Path(self.spark_warehouse_dir).resolve()
        metastore_dir = Path(self.spark_metastore_dir).resolve()
        return {
            "spark.master": self.spark_master,
            "spark.sql.warehouse.dir": str(warehouse_dir),
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={metastore_dir};create=true"
            ),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={metastore_dir.parent}",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.shuffle.partitions": "4",
            # The embedded metastore filters only string partition keys; Spark prunes the
            # date partitions itself.
            "spark.sql.hive.metastorePartitionPruning": "false",
            "spark.ui.enabled": "false",
        }

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
