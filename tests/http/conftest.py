"""Fixtures for the HTTP API tests: a warehouse (DuckDB file or this run's PostgreSQL, in a
schema of its own), tokens, and a real server on a free port with its own Redis key prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serving.http import ServerSettings
from serving.http.tokens import TokenStore
from tests.http.http_support import Client, create_rollup_tables, running_server
from warehouse import Warehouse, WarehouseConfig, connect


@dataclass
class Api:
    """A running server, its warehouse configuration and ready-made tokens."""

    base: str
    config: WarehouseConfig
    settings: ServerSettings
    tokens: dict[str, str]

    def client(self, who: str | None = None) -> Client:
        return Client(self.base, self.tokens[who] if who else None)

    def warehouse(self) -> Warehouse:
        return connect(self.config, wait_seconds=10)


def make_tokens(wh: Warehouse) -> dict[str, str]:
    store = TokenStore(wh)
    made = {
        "alice": store.create("alice", "analytics", "acme"),
        "bob": store.create("bob", "sales", "acme"),
        "carol": store.create("carol", "analytics", "globex"),
        "admin": store.create("root", "ops", "acme", is_admin=True),
    }
    revoked = store.create("mallory", None, "acme")
    store.revoke(revoked[0].token_id)
    tokens = {name: token for name, (_, token) in made.items()}
    tokens["revoked"] = revoked[1]
    return tokens


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseConfig]:
    """A fresh schema on DuckDB (a temporary file) or on this run's PostgreSQL database."""
    schema = f"m_{uuid.uuid4().hex[:10]}"
    if request.param == "duckdb":
        yield WarehouseConfig(
            target="duckdb", duckdb_path=str(tmp_path / "wh.duckdb"), schema=schema
        )
        return
    request.getfixturevalue("pg_env")
    config = WarehouseConfig(target="postgres", schema=schema)
    yield config
    with connect(config) as wh:
        wh.execute(f"drop schema if exists {schema} cascade")


@pytest.fixture()
def api(warehouse_config: WarehouseConfig, redis_url: str, redis_prefix: str) -> Iterator[Api]:
    """A server over empty rollup tables, with tokens for alice, bob, carol and an admin."""
    with connect(warehouse_config) as wh:
        create_rollup_tables(wh)
        tokens = make_tokens(wh)
    settings = ServerSettings(
        warehouse=warehouse_config,
        redis_url=redis_url,
        realtime_prefix=f"{redis_prefix}rt:",
        cache_namespace=f"{redis_prefix}cache",
        token_memo_seconds=0,
        duckdb_idle_seconds=0.05,
    )
    with running_server(settings) as base:
        yield Api(base, warehouse_config, settings, tokens)
