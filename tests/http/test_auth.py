"""Tokens and authentication over real HTTP: 401 without or with a bad token, problem+json,
/healthz open, revoked tokens refused, admin-only endpoints 403 for others, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serving.http import ServerSettings
from serving.http.auth import Caller
from serving.http.context import ServerContext
from serving.http.tokens import TokenRecord, TokenStore, hash_token
from tests.http.conftest import Api
from tests.http.http_support import Client, create_rollup_tables, running_server
from warehouse import WarehouseConfig, connect

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_needs_no_token(api: Api) -> None:
    reply = api.client().get("/healthz")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}


def test_no_token_bad_token_and_revoked_token_are_401_problems(api: Api) -> None:
    path = "/v1/metrics/daily"
    for client in (
        api.client(),
        api.client().with_token("mt_000000000000_" + "x" * 43),
        api.client().with_token("not-a-token"),
        api.client("revoked"),
    ):
        reply = client.get(path)
        assert reply.status == 401, reply.body
        assert reply.content_type.startswith("application/problem+json")
        body = reply.json()
        assert body["status"] == 401 and body["title"] == "Unauthorized" and body["detail"]
        assert reply.headers["www-authenticate"].startswith("Bearer")
    wrong_scheme = api.client().get(path, headers={"Authorization": "Basic abc"})
    assert wrong_scheme.status == 401
    assert api.client("alice").get(path).status == 200


def test_tokens_are_stored_only_as_hashes(api: Api) -> None:
    with api.warehouse() as wh:
        rows = wh.query(f"select * from {wh.schema}.api_tokens")
        stored = {str(value) for row in rows for value in row}
        listed = TokenStore(wh).list()
    for token in api.tokens.values():
        assert token not in stored
        assert token.split("_", 2)[2] not in " ".join(stored)  # the secret may hold "_"
        assert hash_token(token) in stored
    assert {r.user_id for r in listed} == {"alice", "bob", "carol", "root", "mallory"}
    assert [r.user_id for r in listed if r.revoked_at is not None] == ["mallory"]


def test_unknown_path_is_a_404_problem(api: Api) -> None:
    reply = api.client("alice").get("/v1/nothing-here")
    assert reply.status == 404
    assert reply.content_type.startswith("application/problem+json")


def test_cli_create_list_revoke(api: Api) -> None:
    env = {**os.environ, "METRICS_TARGET": api.config.target, "METRICS_SCHEMA": api.config.schema}
    env["METRICS_DUCKDB_PATH"] = api.config.duckdb_path

    def metrics(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestration.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    created = metrics("tokens", "create", "--user", "dave", "--team", "ops", "--org", "acme")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("mt_")
    reply = api.client().with_token(token).get("/v1/metrics/weekly")
    assert reply.status == 200, reply.body
    listed = metrics("tokens", "list")
    assert listed.returncode == 0 and "dave" in listed.stdout and token not in listed.stdout
    token_id = token.split("_")[1]
    revoked = metrics("tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert api.client().with_token(token).get("/v1/metrics/weekly").status == 401
    again = metrics("tokens", "revoke", token_id)
    assert again.returncode == 1
    bad = metrics("tokens", "create", "--user", "has space")
    assert bad.returncode == 2 and "--user" in bad.stderr
    reserved = metrics("tokens", "create", "--user", "operator")
    assert reserved.returncode == 2 and "reserved" in reserved.stderr


def test_a_callers_scope_names_everything_it_may_see() -> None:
    """Readable when short, a digest of the same text when long; worked out once per record."""
    now = datetime.now(UTC)
    record = TokenRecord("0123456789ab", "a:b", "t", None, True, now, None)
    assert Caller(record).scope == "a%3Ab|t|-|admin"
    assert record.__dict__["scope"] == "a%3Ab|t|-|admin"  # kept on the record
    assert Caller(TokenRecord("0123456789ab", "u", None, None, False, now, None)).scope == "u|-|-|-"
    long = Caller(TokenRecord("0123456789ab", "u" * 130, "t", "o", False, now, None)).scope
    assert long.startswith("sha256-") and len(long) == 7 + 64
    assert long != Caller(TokenRecord("0123456789ab", "u" * 130, "t", "p", False, now, None)).scope


@pytest.mark.parametrize("warehouse_config", ["postgres"], indirect=True)
def test_a_revoked_token_fails_once_its_memo_time_is_over(
    warehouse_config: WarehouseConfig, redis_url: str, redis_prefix: str
) -> None:
    """The server remembers a token lookup for `token_memo_seconds` (docs/http_api.md: 5 s by
    default): a token revoked while remembered is refused as soon as that time is over, on the
    dashboard route (checked on the event loop) as on every other."""
    memo = 1.0
    with connect(warehouse_config) as wh:
        create_rollup_tables(wh)
        record, token = TokenStore(wh).create("dave", "ops", "acme")
    settings = ServerSettings(
        warehouse=warehouse_config,
        redis_url=redis_url,
        realtime_prefix=f"{redis_prefix}rt:",
        cache_namespace=f"{redis_prefix}cache",
        token_memo_seconds=memo,
    )
    with running_server(settings) as base:
        client = Client(base, token)
        for path in ("/v1/dashboards/7d", "/v1/metrics/daily"):  # remembered from here on
            assert client.get(path).status == 200
        with connect(warehouse_config) as wh:
            assert TokenStore(wh).revoke(record.token_id)
        time.sleep(memo + 0.1)
        for path in ("/v1/dashboards/7d", "/v1/dashboards/7d", "/v1/metrics/daily"):
            reply = client.get(path)
            assert reply.status == 401, (path, reply.body)


@pytest.mark.parametrize("warehouse_config", ["postgres"], indirect=True)
def test_requests_whose_token_memo_ended_share_one_lookup(
    warehouse_config: WarehouseConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many requests carrying one token at the moment its memo ends make one warehouse lookup,
    not one each; all of them get the token's record."""
    with connect(warehouse_config) as wh:
        record, token = TokenStore(wh).create("erin", "ops", "acme")
    lookups: list[str] = []
    real_lookup = TokenStore.lookup

    def slow_lookup(store: TokenStore, text: str) -> TokenRecord | None:
        lookups.append(text)
        time.sleep(0.2)  # the other requests arrive while this one is in the warehouse
        return real_lookup(store, text)

    monkeypatch.setattr(TokenStore, "lookup", slow_lookup)
    context = ServerContext(ServerSettings(warehouse=warehouse_config, token_memo_seconds=60))
    start = threading.Barrier(16)

    def request(_: int) -> TokenRecord | None:
        start.wait()
        return context.token(token)

    try:
        with ThreadPoolExecutor(16) as pool:
            found = list(pool.map(request, range(16), timeout=30))
    finally:
        context.close()
    assert len(lookups) == 1
    assert len(found) == 16 and all(r is not None and r.token_id == record.token_id for r in found)


def test_the_http_api_refuses_spark_up_front(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On METRICS_TARGET=spark, `metrics serve` and `metrics tokens` stop with one clear line
    (not a SQL error from the token table's DDL), and so does a server built in Python."""
    from orchestration.cli import main
    from serving.http.connections import ConnectionPool

    monkeypatch.setenv("METRICS_TARGET", "spark")
    for argv in (["serve", "--port", "8123"], ["tokens", "list"]):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert "METRICS_TARGET=spark: the HTTP API" in error, error
        assert "serving.MetricsReader" in error
    with pytest.raises(ValueError, match="serves from PostgreSQL or DuckDB"):
        ConnectionPool(WarehouseConfig())
