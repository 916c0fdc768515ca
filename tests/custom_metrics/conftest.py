"""Fixtures: one DuckDB file, one PostgreSQL schema and (for tests that ask for it with
tests.targets.on_every_warehouse) one Spark schema per session, loaded with the same rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from custom_metrics import CustomMetricService, Principal, compile_metric
from tests.custom_metrics.support import (
    RecordingRaw,
    duckdb_warehouse,
    load_sources,
    make_events,
    make_rollups,
    postgres_warehouse,
    spark_warehouse,
)
from warehouse import Warehouse


@pytest.fixture(scope="session")
def events() -> list[dict[str, Any]]:
    return make_events()


@pytest.fixture(scope="session")
def rollups(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return make_rollups(events)


Sources = tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]


@pytest.fixture(scope="session")
def sources(events: list[dict[str, Any]], rollups: dict[str, list[dict[str, Any]]]) -> Sources:
    """The session's events and rollups, as every loaded warehouse holds them."""
    return events, rollups


def _loaded(wh: Warehouse, rows: Sources) -> Iterator[Warehouse]:
    """`wh` with the session's rows; closed afterwards (a Spark schema is dropped)."""
    load_sources(wh, *rows)
    if wh.dialect == "spark":
        # A first series query compiles Spark's code paths once, outside any test's limit.
        warm = {"name": "warm", "metric_type": "COUNT", "data_source": "events"}
        definition = {**warm, "calculation_formula": "event_id", "time_grain": "week"}
        compiled = compile_metric(
            definition, "spark", date(2025, 1, 6), date(2025, 1, 20), schema=wh.schema
        )
        wh.query(compiled.sql, compiled.params)
    yield wh
    if wh.dialect == "spark":
        wh.execute(f"drop schema if exists {wh.schema} cascade")
    wh.close()


@pytest.fixture(scope="session")
def duck_wh(tmp_path_factory: pytest.TempPathFactory, sources: Sources) -> Iterator[Warehouse]:
    yield from _loaded(
        duckdb_warehouse(tmp_path_factory.mktemp("cm") / "warehouse.duckdb"), sources
    )


@pytest.fixture(scope="session")
def pg_wh(pg_database: dict[str, str], sources: Sources) -> Iterator[Warehouse]:
    yield from _loaded(postgres_warehouse(pg_database, f"cm_{uuid.uuid4().hex[:8]}"), sources)


@pytest.fixture(scope="session")
def spark_wh(spark_dirs: dict[str, str], sources: Sources) -> Iterator[Warehouse]:
    """The same rows in a schema of the test run's Spark warehouse (one session per process)."""
    yield from _loaded(spark_warehouse(spark_dirs, f"cm_{uuid.uuid4().hex[:8]}"), sources)


_LOADED = {"duckdb": "duck_wh", "postgres": "pg_wh", "spark": "spark_wh"}


@pytest.fixture(params=["duckdb", "postgres"])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    """The loaded warehouse, once per dialect (Spark too under tests.targets.on_every_warehouse)."""
    warehouse: Warehouse = request.getfixturevalue(_LOADED[request.param])
    return warehouse


@pytest.fixture()
def recorded(wh: Warehouse) -> Iterator[tuple[CustomMetricService, RecordingRaw]]:
    """A service whose connection records statements (tables already exist)."""
    CustomMetricService(wh, Principal("setup"))  # create the tables before recording
    original = wh.raw
    recorder = RecordingRaw(original)
    wh.raw = recorder
    try:
        yield CustomMetricService(wh, Principal("mallory", "t", "o"), ensure_tables=False), recorder
    finally:
        wh.raw = original
