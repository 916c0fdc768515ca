"""The local Spark session behind METRICS_TARGET=spark, shared with dbt-spark in one process.

dbt-spark's `method: session` runs every statement on `SparkSession.builder.getOrCreate()`, so
Python code and an in-process dbt run share one session, one warehouse directory and one
embedded (Derby) metastore. Derby admits one process at a time: another process reaches the same
tables only after this one calls `stop_spark()` (or exits).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warehouse.config import WarehouseConfig, WarehouseConfigError

if TYPE_CHECKING:
    from warehouse.connection import Warehouse


class SparkSessionMismatchError(RuntimeError):
    """This process already runs a Spark session on another warehouse directory."""


def _local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file:")).resolve()


def spark_session(config: WarehouseConfig) -> Any:
    """The process's Spark session with the configuration's settings, started if needed."""
    from pyspark.sql import SparkSession

    conf = config.spark_conf()
    driver = conf.get("spark.driver.extraClassPath")
    if driver and not Path(driver).is_file():  # else the JVM fails minutes later, deep in Hive
        raise WarehouseConfigError(
            f"PostgreSQL's JDBC driver, which the shared metastore (METRICS_SPARK_METASTORE_URL) "
            f"needs, is not at METRICS_SPARK_JDBC_JAR={driver}: `make java` installs Debian's "
            "libpostgresql-jdbc-java there, or point METRICS_SPARK_JDBC_JAR at the jar"
        )
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    running = _local_path(str(session.conf.get("spark.sql.warehouse.dir")))
    wanted = Path(conf["spark.sql.warehouse.dir"])
    if running != wanted:
        raise SparkSessionMismatchError(
            f"this process's Spark session uses the warehouse directory {running}, not "
            f"METRICS_SPARK_WAREHOUSE_DIR={wanted}: a session keeps its directory and metastore "
            "until it stops (warehouse.spark.stop_spark())"
        )
    return session


def stop_spark() -> None:
    """Stop this process's Spark session and its JVM, releasing the Derby metastore."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None


def partition_rows(
    warehouse: Warehouse, table: str, columns: Sequence[str], partition: str, key: str
) -> list[dict[str, Any]]:
    """The rows of `table` whose partition column `partition` is `key`, as dicts of `columns`."""
    rows = warehouse.query(
        f"select {', '.join(columns)} from {table} where {partition} = {warehouse.param('key')}",
        {"key": key},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def rewrite_partition(
    warehouse: Warehouse,
    table: str,
    columns: Sequence[str],
    partition: str,
    key: str,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Make `rows` (dicts of `columns`, without the partition column) the whole partition
    `partition = key` of a Parquet table, where Spark can neither update nor delete rows; no
    rows drop it.

    One `insert overwrite` of a dynamic partition writes them (from `_rows_view`): Spark writes
    the new files apart and swaps the partition's directory when the job commits, so a write
    that fails leaves the previous partition whole, whatever the number of rows.
    """
    if not rows:
        warehouse.execute(
            f"alter table {table} drop if exists partition "
            f"({partition} = {warehouse.param('key')})",
            {"key": key},
        )
        return
    names = [*(c for c in columns if c != partition), partition]
    listed = ", ".join(names)
    keyed = [{**row, partition: key} for row in rows]
    with _rows_view(warehouse, table, names, keyed) as view:
        warehouse.execute(
            f"insert overwrite table {table} partition ({partition}) ({listed}) "
            f"select {listed} from {view}"
        )


def append_rows(
    warehouse: Warehouse, table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Append `rows` (dicts of `columns`) to a Parquet table in one statement
    (`Warehouse.insert_rows` on Spark)."""
    if not rows:
        return
    listed = ", ".join(columns)
    with _rows_view(warehouse, table, columns, rows) as view:
        warehouse.execute(f"insert into {table} ({listed}) select {listed} from {view}")


@contextmanager
def _rows_view(
    warehouse: Warehouse, table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> Iterator[str]:
    """A temporary view of `rows` typed by `table`'s own columns: values travel as data, never
    as SQL text, and a value of the wrong type is refused here, before anything is written."""
    from pyspark.sql.types import StructType

    session = warehouse.raw
    types = {field.name: field for field in session.table(table).schema.fields}
    frame = session.createDataFrame(
        [tuple(row[name] for name in columns) for row in rows],
        StructType([types[name] for name in columns]),
    )
    view = f"rows_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(view)
    try:
        yield view
    finally:
        session.catalog.dropTempView(view)


def refresh_tables(warehouse: Warehouse, tables: Iterable[str] | None = None) -> None:
    """Make this session read what other processes wrote since to `tables` (``schema.table``;
    those that do not exist yet are skipped), or with None to every table of the warehouse's
    two schemas.

    A Spark session caches each table it has read (its files, its partitions' files) until told
    otherwise; with a metastore shared between processes (METRICS_SPARK_METASTORE_URL), a dbt
    child or another run may have rewritten them since. REFRESH TABLE forgets that cache. A
    caller that names the tables it reads spares listing both schemas and refreshing each of
    their tables.
    """
    catalog = warehouse.raw.catalog
    if tables is not None:
        for name in tables:
            if catalog.tableExists(name):
                catalog.refreshTable(name)
        return
    for schema in dict.fromkeys((warehouse.schema, warehouse.source_schema)):
        if catalog.databaseExists(schema):
            for table in catalog.listTables(schema):
                if not table.isTemporary:  # dbt's __dbt_tmp views belong to its own session
                    catalog.refreshTable(f"{schema}.{table.name}")
