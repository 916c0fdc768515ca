"""Fixtures for the realtime tests: clients on the shared Redis, private redis-servers
(stopped when the test ends)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from realtime.metrics import RealtimeMetrics
from tests.realtime.support import REDIS_SERVER, RedisServer
from warehouse import Warehouse, connect


@pytest.fixture()
def redis_server_factory(tmp_path: Path) -> Iterator[type[RedisServer]]:
    """Make RedisServer objects that are stopped when the test ends."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    started: list[RedisServer] = []

    class Tracked(RedisServer):
        def __init__(self, port: int | None = None, *extra: str) -> None:
            super().__init__(tmp_path / f"redis-{uuid.uuid4().hex[:6]}", port, *extra)
            started.append(self)

    yield Tracked
    for server in started:
        server.stop()


@pytest.fixture()
def private_redis(redis_server_factory: type[RedisServer]) -> RedisServer:
    """A started private redis-server."""
    return redis_server_factory().start()


@pytest.fixture()
def rt(redis_url: str, redis_prefix: str) -> Iterator[RealtimeMetrics]:
    """RealtimeMetrics on the shared Redis under this test's prefix (fail closed: errors show)."""
    metrics = RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, fail_open=False)
    yield metrics
    metrics.close()


@pytest.fixture()
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the shared Redis, for inspecting keys."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def scratch_warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    """The warehouse `request.param` names (PostgreSQL: this run's database; DuckDB: a file;
    Spark: this run's Spark warehouse) with a schema of its own (METRICS_SCHEMA), so tests
    never share tables; dropped afterwards."""
    if request.param == "postgres":
        request.getfixturevalue("pg_env")
    elif request.param == "spark":
        request.getfixturevalue("spark_env")
    else:
        monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("METRICS_TARGET", request.param)
    monkeypatch.setenv("METRICS_SCHEMA", f"rt_{uuid.uuid4().hex[:10]}")
    wh = connect()
    yield wh
    if wh.dialect in ("postgres", "spark"):
        wh.execute(f"drop schema if exists {wh.schema} cascade")
    wh.close()


# For what runs on every warehouse (the backup, reconciliation): `warehouse` on Spark too, with
# the Spark tests.
WITH_SPARK = pytest.mark.parametrize(
    "warehouse",
    ["postgres", "duckdb", pytest.param("spark", marks=pytest.mark.spark)],
    indirect=True,
)


@pytest.fixture(params=["postgres", "duckdb"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    """`scratch_warehouse` on PostgreSQL and on DuckDB."""
    yield from scratch_warehouse(request, tmp_path, monkeypatch)
