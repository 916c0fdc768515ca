"""Fixtures that give each batch test its own warehouse: a DuckDB file, PostgreSQL schemas, or
schemas in the test run's Spark warehouse (one session per process: spark_dirs in
tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.batch.harness import BatchHarness
from warehouse import WarehouseConfig, connect


def _harness(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BatchHarness:
    suffix = uuid.uuid4().hex[:8]
    schema, source_schema = f"metrics_{suffix}", f"raw_{suffix}"
    monkeypatch.setenv("METRICS_TARGET", target)
    monkeypatch.setenv("METRICS_SCHEMA", schema)
    monkeypatch.setenv("METRICS_SOURCE_SCHEMA", source_schema)
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("METRICS_WEEK_START", "monday")
    return BatchHarness(target, schema, source_schema, tmp_path / "dbt_target")


@pytest.fixture(params=["duckdb", "postgres", pytest.param("spark", marks=pytest.mark.spark)])
def batch(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BatchHarness]:
    """A fresh warehouse on each target; PostgreSQL and Spark schemas are dropped afterwards."""
    if request.param == "postgres":
        request.getfixturevalue("pg_env")
    if request.param == "spark":
        request.getfixturevalue("spark_env")
    harness = _harness(request.param, tmp_path, monkeypatch)
    yield harness
    if request.param == "spark":
        with connect(WarehouseConfig()) as wh:
            for schema in (harness.schema, harness.source_schema, harness.schema + "_fresh"):
                wh.execute(f"drop schema if exists {schema} cascade")
    if request.param == "postgres":
        with connect(WarehouseConfig()) as wh:
            for schema in (harness.schema, harness.source_schema, harness.schema + "_fresh"):
                wh.execute(f"drop schema if exists {schema} cascade")


@pytest.fixture()
def duckdb_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BatchHarness:
    """A fresh embedded warehouse, for tests whose logic doesn't depend on the target."""
    return _harness("duckdb", tmp_path, monkeypatch)
