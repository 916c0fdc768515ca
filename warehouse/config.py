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
# Debian's libpostgresql-jdbc-java (make java installs it): the JDBC driver of a Spark metastore
# kept in PostgreSQL.
POSTGRESQL_JDBC_JAR = "/usr/share/java/postgresql.jar"


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
    spark_metastore_url: str = field(
        default_factory=lambda: _env("METRICS_SPARK_METASTORE_URL", "")
    )
    spark_jdbc_jar: str = field(
        default_factory=lambda: _env("METRICS_SPARK_JDBC_JAR", POSTGRESQL_JDBC_JAR)
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
            ("METRICS_SPARK_METASTORE_URL", self.spark_metastore_url),
            ("METRICS_SPARK_JDBC_JAR", self.spark_jdbc_jar),
        ):
            if "\x00" in path:
                raise WarehouseConfigError(f"{variable} must not contain a NUL character")
        if ";" in self.spark_metastore_dir:
            # The directory goes into the metastore's JDBC URL, where ';' starts an attribute.
            raise WarehouseConfigError("METRICS_SPARK_METASTORE_DIR must not contain ';'")
        if self.spark_metastore_url and not self.spark_metastore_url.startswith(
            "jdbc:postgresql://"
        ):
            raise WarehouseConfigError(
                "METRICS_SPARK_METASTORE_URL must be a PostgreSQL JDBC URL "
                "(jdbc:postgresql://host:port/database?user=...), not "
                f"{self.spark_metastore_url!r}"
            )

    @property
    def week_start_index(self) -> int:
        """0 for Monday ... 6 for Sunday, as Python's date.weekday()."""
        return WEEKDAYS.index(self.week_start)

    @property
    def duckdb_file(self) -> Path:
        return Path(self.duckdb_path)

    def spark_conf(self) -> dict[str, str]:
        """The Spark session settings (absolute paths) that dbt's profile and Python share.

        The catalog is Spark's built-in Hive metastore client on a database: an embedded Derby
        one under METRICS_SPARK_METASTORE_DIR (one process at a time), or the PostgreSQL
        database METRICS_SPARK_METASTORE_URL names, which several processes share (Dagster's
        run and its dbt child, sensors, the CLI). Spark creates the metastore's tables: in Derby
        on first use, in PostgreSQL all of them when the session's metastore client starts (at
        its first catalog access, not when the session is built; `_metastore_conf` says why).
        """
        warehouse_dir = Path(self.spark_warehouse_dir).resolve()
        metastore_dir = Path(self.spark_metastore_dir).resolve()
        return {
            "spark.master": self.spark_master,
            "spark.sql.warehouse.dir": str(warehouse_dir),
            **self._metastore_conf(metastore_dir),
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.shuffle.partitions": "4",
            # The embedded metastore filters only string partition keys; Spark prunes the
            # date partitions itself.
            "spark.sql.hive.metastorePartitionPruning": "false",
            "spark.ui.enabled": "false",
            # The progress bar would interleave with dbt's JSON log lines, which Dagster reads.
            "spark.ui.showConsoleProgress": "false",
        }

    def _metastore_conf(self, metastore_dir: Path) -> dict[str, str]:
        jdo = "spark.hadoop.javax.jdo.option."
        common = {
            "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
            "spark.hadoop.hive.metastore.schema.verification": "false",
            "spark.hadoop.datanucleus.autoStartMetaDataFiles": "package.jdo",
        }
        if not self.spark_metastore_url:
            return {
                f"{jdo}ConnectionURL": f"jdbc:derby:;databaseName={metastore_dir};create=true",
                f"{jdo}ConnectionDriverName": "org.apache.derby.jdbc.EmbeddedDriver",
                "spark.driver.extraJavaOptions": f"-Dderby.system.home={metastore_dir.parent}",
                "spark.hadoop.datanucleus.autoStartMechanism": "None",
                **common,
            }
        return {
            f"{jdo}ConnectionURL": self.spark_metastore_url,
            f"{jdo}ConnectionDriverName": "org.postgresql.Driver",
            "spark.driver.extraClassPath": str(Path(self.spark_jdbc_jar).resolve()),
            # Every metastore table is created when the metastore client starts (the session's
            # first catalog access; from the metastore's package.jdo), not when a statement first
            # needs it: created then, inside the transaction that creates a table, PostgreSQL
            # makes the foreign keys of a new privileges table wait for that very transaction,
            # and the session hangs.
            "spark.hadoop.datanucleus.autoStartMechanism": "MetaData",
            **common,
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
