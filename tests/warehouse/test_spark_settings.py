"""dbt's Spark profile and the warehouse package start their sessions with the same settings,
on the embedded Derby metastore and on a shared PostgreSQL one (no Spark needed)."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest
import yaml

from warehouse import WarehouseConfig, WarehouseConfigError
from warehouse.dbt_runner import DBT_PROJECT_DIR


def _profile_parameters() -> dict[str, str]:
    """The spark output's server_side_parameters, rendered as dbt renders env_var()."""
    profile = yaml.safe_load((Path(DBT_PROJECT_DIR) / "profiles.yml").read_text())
    spark = profile["metrics_aggregation"]["outputs"]["spark"]

    def env_var(name: str, default: str | None = None) -> str:
        return os.environ.get(name, default or "")

    return {
        key: jinja2.Template(str(value)).render(env_var=env_var)
        for key, value in spark["server_side_parameters"].items()
    }


@pytest.mark.parametrize(
    "metastore_url", ["", "jdbc:postgresql://127.0.0.1:5432/metastore?user=postgres"]
)
def test_profile_and_python_agree(
    metastore_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_SPARK_WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    monkeypatch.setenv("METRICS_SPARK_METASTORE_DIR", str(tmp_path / "metastore_db"))
    monkeypatch.setenv("METRICS_SPARK_METASTORE_URL", metastore_url)
    python = WarehouseConfig().spark_conf()
    profile = _profile_parameters()
    # Derby's home directory is a JVM option only the Python side sets; an empty class path
    # entry is the profile's way of setting none.
    python.pop("spark.driver.extraJavaOptions", None)
    if not profile["spark.driver.extraClassPath"]:
        del profile["spark.driver.extraClassPath"]
    assert profile == python
    shared = python["spark.hadoop.javax.jdo.option.ConnectionURL"] == metastore_url
    assert shared == bool(metastore_url)


def test_only_a_postgresql_metastore_url_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_SPARK_METASTORE_URL", "jdbc:mysql://db/metastore")
    with pytest.raises(WarehouseConfigError, match="METRICS_SPARK_METASTORE_URL"):
        WarehouseConfig()


def test_a_missing_jdbc_driver_is_named_before_spark_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a shared metastore and no PostgreSQL JDBC jar, the error says what is missing and
    how to install it, instead of Hive's stack traces once the JVM is up."""
    from warehouse.spark import spark_session

    monkeypatch.setenv("METRICS_SPARK_METASTORE_URL", "jdbc:postgresql://127.0.0.1/metastore")
    monkeypatch.setenv("METRICS_SPARK_JDBC_JAR", str(tmp_path / "missing.jar"))
    with pytest.raises(WarehouseConfigError, match=r"METRICS_SPARK_JDBC_JAR=.*make java"):
        spark_session(WarehouseConfig(target="spark"))
