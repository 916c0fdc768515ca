"""Shared fixtures: real PostgreSQL and Redis, isolated per test run.

Every run gets its own PostgreSQL database and its own Redis key prefix, and cleans both up.
When a service is unreachable, tests that need it are skipped, unless
METRICS_REQUIRE_SERVICES=1, in which case they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import redis

RUN_ID = uuid.uuid4().hex[:10]


def _require_services() -> bool:
    return os.environ.get("METRICS_REQUIRE_SERVICES", "") == "1"


def _unavailable(service: str, error: Exception) -> None:
    message = f"{service} is not reachable: {error}"
    if _require_services():
        pytest.fail(f"{message} (METRICS_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def _admin_pg_params() -> dict[str, str]:
    """Connection parameters from the standard libpq variables, for the admin database."""
    params = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": os.environ.get("PGDATABASE", "postgres"),
    }
    if os.environ.get("PGPASSWORD"):
        params["password"] = os.environ["PGPASSWORD"]
    return params


@contextlib.contextmanager
def _fresh_database(name: str, service: str) -> Iterator[dict[str, str]]:
    """Create the PostgreSQL database `name`; yield libpq parameters for it; drop it after."""
    admin = _admin_pg_params()
    try:
        conn = psycopg2.connect(connect_timeout=5, **admin)
    except psycopg2.OperationalError as error:
        _unavailable(service, error)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        yield {**admin, "dbname": name}
    finally:
        with conn.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database for this test run; yields libpq parameters for it."""
    with _fresh_database(f"metrics_test_{RUN_ID}", "PostgreSQL") as params:
        yield params


@pytest.fixture()
def pg_env(pg_database: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the standard PG* variables at this run's database."""
    mapping = {
        "PGHOST": pg_database["host"],
        "PGPORT": pg_database["port"],
        "PGUSER": pg_database["user"],
        "PGDATABASE": pg_database["dbname"],
    }
    for key, value in mapping.items():
        monkeypatch.setenv(key, value)
    return mapping


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (REDIS_URL, default localhost:6379/0)."""
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        _unavailable("Redis", error)
    finally:
        client.close()
    return url


@pytest.fixture()
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test; every key under it is deleted afterwards."""
    prefix = f"test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        batch = []
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()


@pytest.fixture(scope="session")
def spark_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The Spark warehouse directory and metastore of this test run: a Spark session keeps
    both for the life of the process, so every Spark test shares them (own schemas each).
    The metastore is a PostgreSQL database of this run, which the test process and the dbt
    children of Dagster runs share (METRICS_SPARK_METASTORE_URL).
    Java is needed (make java); without it Spark tests are skipped, or fail when required."""
    if shutil.which("java") is None:
        _unavailable("Java (for Spark)", RuntimeError("no java on PATH"))
    root = tmp_path_factory.mktemp("spark")
    name = f"metrics_test_{RUN_ID}_metastore"
    with _fresh_database(name, "PostgreSQL (Spark's metastore)") as params:
        url = f"jdbc:postgresql://{params['host']}:{params['port']}/{name}?user={params['user']}"
        if params.get("password"):
            url += f"&password={params['password']}"
        yield {
            "METRICS_SPARK_WAREHOUSE_DIR": str(root / "warehouse"),
            "METRICS_SPARK_METASTORE_DIR": str(root / "metastore_db"),
            "METRICS_SPARK_METASTORE_URL": url,
        }


@pytest.fixture()
def spark_env(spark_dirs: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the Spark settings at this run's warehouse (Java is needed: make java)."""
    for key, value in spark_dirs.items():
        monkeypatch.setenv(key, value)
    return spark_dirs
