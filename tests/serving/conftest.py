"""Fixtures for the cache tests: a namespaced MetricsCache on the real Redis, a closed port, and
small rollup tables (the marts' columns, docs/reference.md) in a fresh DuckDB file, this
run's PostgreSQL or (tests.targets.on_every_warehouse) this run's Spark warehouse."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis

from serving.cache import MetricsCache
from warehouse import WarehouseConfig, connect

# Reader tests run "as of" Monday 2025-03-10 with weeks starting on Monday.
TODAY = date(2025, 3, 10)

DAILY_COLUMNS = [
    "metric_date",
    "entity_type",
    "entity_id",
    "event_type",
    "event_count",
    "unique_actors",
    "revenue_cents",
]
PERIOD_EXTRA = [
    "active_days",
    "avg_daily_events",
    "avg_daily_revenue_cents",
    "prev_event_count",
    "prev_unique_actors",
    "prev_revenue_cents",
    "event_count_growth_pct",
    "unique_actors_growth_pct",
    "revenue_growth_pct",
]
WEEKLY_COLUMNS = [
    "week_start",
    "entity_type",
    "entity_id",
    "event_type",
    "event_count",
    "unique_actors",
    "revenue_cents",
    *PERIOD_EXTRA,
]
MONTHLY_COLUMNS = [*WEEKLY_COLUMNS[:7], "days_in_month", *PERIOD_EXTRA]
MONTHLY_COLUMNS[0] = "month_start"

_TYPES = {
    "metric_date": "date",
    "week_start": "date",
    "month_start": "date",
    "entity_type": "text",
    "entity_id": "text",
    "event_type": "text",
    "days_in_month": "integer",
    "active_days": "integer",
    "avg_daily_events": "numeric(24,6)",
    "avg_daily_revenue_cents": "numeric(24,6)",
    "event_count_growth_pct": "numeric(20,2)",
    "unique_actors_growth_pct": "numeric(20,2)",
    "revenue_growth_pct": "numeric(20,2)",
}


def _day(
    day: date, entity_id: str, event_type: str, n: int, actors: int, rev: int
) -> dict[str, Any]:
    return {
        "metric_date": day,
        "entity_type": "asset",
        "entity_id": entity_id,
        "event_type": event_type,
        "event_count": n,
        "unique_actors": actors,
        "revenue_cents": rev,
    }


def _daily_rows() -> list[dict[str, Any]]:
    """Days 2025-02-25 .. 2025-03-09 for asset a1 (page_view daily, purchase on odd days), plus
    the asset a1 '*' level, and a noisy neighbour a2 that must never leak into a1's figures."""
    rows: list[dict[str, Any]] = []
    days = [date(2025, 2, d) for d in range(25, 29)] + [date(2025, 3, d) for d in range(1, 10)]
    for i, day in enumerate(days, start=1):
        rows.append(_day(day, "a1", "page_view", 10 * i, i, 0))
        if day.day % 2:
            rows.append(_day(day, "a1", "purchase", i, 1, 100 * i))
            rows.append(_day(day, "a1", "*", 11 * i, i + 1, 100 * i))
        else:
            rows.append(_day(day, "a1", "*", 10 * i, i, 0))
        rows.append(_day(day, "a2", "*", 999, 99, 9999))
    return rows


def _period_row(period: str, start: date, **values: Any) -> dict[str, Any]:
    return {period: start, "entity_type": "asset", "entity_id": "a1", "event_type": "*", **values}


def _weekly_rows() -> list[dict[str, Any]]:
    return [
        _period_row(
            "week_start",
            date(2025, 2, 24),
            event_count=700,
            unique_actors=40,
            revenue_cents=5000,
            active_days=7,
            avg_daily_events=Decimal("100.000000"),
            avg_daily_revenue_cents=Decimal("714.285714"),
            prev_event_count=None,
            prev_unique_actors=None,
            prev_revenue_cents=None,
            event_count_growth_pct=None,
            unique_actors_growth_pct=None,
            revenue_growth_pct=None,
        ),
        _period_row(
            "week_start",
            date(2025, 3, 3),
            event_count=910,
            unique_actors=50,
            revenue_cents=4000,
            active_days=7,
            avg_daily_events=Decimal("130.000000"),
            avg_daily_revenue_cents=Decimal("571.428571"),
            prev_event_count=700,
            prev_unique_actors=40,
            prev_revenue_cents=5000,
            event_count_growth_pct=Decimal("30.00"),
            unique_actors_growth_pct=Decimal("25.00"),
            revenue_growth_pct=Decimal("-20.00"),
        ),
    ]


def _monthly_rows() -> list[dict[str, Any]]:
    return [
        _period_row(
            "month_start",
            date(2025, 1, 1),
            event_count=3100,
            unique_actors=120,
            revenue_cents=31000,
            days_in_month=31,
            active_days=31,
            avg_daily_events=Decimal("100.000000"),
            avg_daily_revenue_cents=Decimal("1000.000000"),
            prev_event_count=None,
            prev_unique_actors=None,
            prev_revenue_cents=None,
            event_count_growth_pct=None,
            unique_actors_growth_pct=None,
            revenue_growth_pct=None,
        ),
        _period_row(
            "month_start",
            date(2025, 2, 1),
            event_count=3500,
            unique_actors=150,
            revenue_cents=28000,
            days_in_month=28,
            active_days=28,
            avg_daily_events=Decimal("125.000000"),
            avg_daily_revenue_cents=Decimal("1000.000000"),
            prev_event_count=3100,
            prev_unique_actors=120,
            prev_revenue_cents=31000,
            event_count_growth_pct=Decimal("12.90"),
            unique_actors_growth_pct=Decimal("25.00"),
            revenue_growth_pct=Decimal("-9.68"),
        ),
    ]


ROLLUPS: dict[str, tuple[list[str], list[dict[str, Any]]]] = {
    "daily_metrics": (DAILY_COLUMNS, _daily_rows()),
    "weekly_metrics": (WEEKLY_COLUMNS, _weekly_rows()),
    "monthly_metrics": (MONTHLY_COLUMNS, _monthly_rows()),
}


def create_rollups(config: WarehouseConfig) -> None:
    """Create the three rollup tables with the contract's columns and load the rows above (one
    INSERT a table: Spark takes a second a statement)."""
    with connect(config) as wh:
        wh.execute(f"create schema if not exists {wh.schema}")
        spark = wh.dialect == "spark"
        for table, (columns, rows) in ROLLUPS.items():
            types = [_TYPES.get(c, "bigint") for c in columns]
            if spark:
                types = ["string" if t == "text" else t for t in types]
            ddl = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
            wh.execute(f"create table {wh.schema}.{table} ({ddl})" + (" using parquet" * spark))
            params = {
                f"v{i}_{j}": row[c] for i, row in enumerate(rows) for j, c in enumerate(columns)
            }
            tuples = [
                "(" + ", ".join(wh.param(f"v{i}_{j}") for j in range(len(columns))) + ")"
                for i in range(len(rows))
            ]
            names = ", ".join(columns)
            wh.execute(
                f"insert into {wh.schema}.{table} ({names}) values {', '.join(tuples)}", params
            )


@pytest.fixture()
def cache(redis_url: str, redis_prefix: str) -> Iterator[MetricsCache]:
    """A cache whose every key lives under this test's unique prefix."""
    c = MetricsCache.from_url(redis_url, namespace=redis_prefix)
    yield c
    c.close()


@pytest.fixture()
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture()
def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def duckdb_rollups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WarehouseConfig:
    """Rollup tables in a fresh DuckDB file, with the environment pointing at it."""
    monkeypatch.setenv("METRICS_TARGET", "duckdb")
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("METRICS_SCHEMA", "metrics")
    monkeypatch.setenv("METRICS_WEEK_START", "monday")
    config = WarehouseConfig()
    create_rollups(config)
    return config


def _rollups_in_own_schema(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WarehouseConfig]:
    """Rollup tables in a schema of their own on a server warehouse, dropped afterwards."""
    schema = f"cache_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("METRICS_TARGET", target)
    monkeypatch.setenv("METRICS_SCHEMA", schema)
    monkeypatch.setenv("METRICS_WEEK_START", "monday")
    config = WarehouseConfig()
    create_rollups(config)
    yield config
    with connect(config) as wh:
        wh.execute(f"drop schema if exists {schema} cascade")


@pytest.fixture()
def postgres_rollups(
    pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[WarehouseConfig]:
    """Rollup tables in this run's PostgreSQL database, in a schema of their own."""
    yield from _rollups_in_own_schema("postgres", monkeypatch)


@pytest.fixture()
def spark_rollups(
    spark_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[WarehouseConfig]:
    """Rollup tables in a schema of this run's Spark warehouse (the process's one session)."""
    yield from _rollups_in_own_schema("spark", monkeypatch)


@pytest.fixture(params=["duckdb", "postgres"])
def rollups(request: pytest.FixtureRequest) -> WarehouseConfig:
    """The rollup tables on each warehouse in turn (Spark too under on_every_warehouse)."""
    config: WarehouseConfig = request.getfixturevalue(f"{request.param}_rollups")
    return config
