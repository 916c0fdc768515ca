"""The local Spark session behind METRICS_TARGET=spark, shared with dbt-spark in one process.

dbt-spark's `method: session` runs every statement on `SparkSession.builder.getOrCreate()`, so
Python code and an in-process dbt run share one session, one warehouse directory and one
embedded (Derby) metastore. Derby admits one process at a time: another process reaches the same
tables only after this one calls `stop_spark()` (or exits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warehouse.config import WarehouseConfig


class SparkSessionMismatchError(RuntimeError):
    """This process already runs a Spark session on another warehouse directory."""


def _local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file:")).resolve()


def spark_session(config: WarehouseConfig) -> Any:
    """The process's Spark session with the configuration's settings, started if needed."""
    from pyspark.sql import SparkSession

    conf = config.spark_conf()
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
