"""The dashboards endpoint over real HTTP: the bundle's figures against plain Python, served
from the cache, with the caller's scope in the cache key (one caller's entry never serves
another), and its hits and misses on /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.http.conftest import Api
from tests.http.http_support import daily_rows, insert_rows

DUCKDB_ONLY = pytest.mark.parametrize("warehouse_config", ["duckdb"], indirect=True)


@DUCKDB_ONLY
def test_dashboard_is_cached_per_caller_scope(api: Api, redis_url: str) -> None:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=7)
    rows = daily_rows(first, 7)
    with api.warehouse() as wh:
        insert_rows(wh, "daily_metrics", rows)
    expected = [
        r["event_count"]
        for r in sorted(rows, key=lambda r: r["metric_date"])
        if (r["entity_type"], r["entity_id"], r["event_type"]) == ("asset", "a1", "*")
    ]
    alice, bob = api.client("alice"), api.client("bob")
    path = "/v1/dashboards/7d?entity_type=asset&entity_id=a1"
    first_reply = alice.get(path)
    assert first_reply.status == 200, first_reply.body
    bundle = first_reply.json()
    assert bundle["series"]["event_count"] == expected
    assert bundle["totals"]["event_count"] == sum(expected)
    assert bundle["series"]["period_start"][0] == first.isoformat()
    assert alice.get(path).json() == bundle  # a hit: the same bytes' content

    # Change the warehouse behind the cache's back: alice's entry still serves her, while bob
    # (another scope, so another key) computes his own and sees the change.
    with api.warehouse() as wh:
        wh.execute(
            f"update {wh.schema}.daily_metrics set event_count = event_count + 100"
            " where entity_type = 'asset' and entity_id = 'a1' and event_type = '*'"
        )
    assert alice.get(path).json()["series"]["event_count"] == expected
    assert bob.get(path).json()["series"]["event_count"] == [n + 100 for n in expected]

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() for k in client.scan_iter(match=f"*{api.settings.cache_namespace}:*")]
    finally:
        client.close()
    dashboard_keys = [k for k in keys if ":dashboard:" in k]
    assert any("alice" in k and "analytics" in k for k in dashboard_keys), dashboard_keys
    assert any("bob" in k and "sales" in k for k in dashboard_keys), dashboard_keys

    text = alice.get("/metrics").body.decode()
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("metrics_cache_")
    )
    assert float(samples["metrics_cache_hits_total"]) >= 2
    assert float(samples["metrics_cache_misses_total"]) >= 2

    assert alice.get("/v1/dashboards/1y").status == 422
    bad = alice.get("/v1/dashboards/7d?entity_type=*&entity_id=a1")
    assert bad.status == 422 and bad.json()["field"] == "entity_id"
    assert api.client().get(path).status == 401


@DUCKDB_ONLY
def test_dashboard_parameters_are_checked_after_the_caller(api: Api) -> None:
    """The route reads its own parameters: the caller first (401), then the path, then the
    query, each error a 422 problem naming the field with pydantic's message."""
    alice, nobody = api.client("alice"), api.client()
    assert nobody.get("/v1/dashboards/1y?entity_type=").status == 401
    assert api.client("revoked").get("/v1/dashboards/1y").status == 401
    cases = {
        "/v1/dashboards/1y?entity_type=": (
            "date_range",
            "date_range: Input should be '7d', '30d', '90d' or '12m'",
        ),
        "/v1/dashboards/7d?entity_type=": (
            "entity_type",
            "entity_type: String should have at least 1 character",
        ),
        f"/v1/dashboards/7d?entity_type=asset&entity_id={'x' * 201}": (
            "entity_id",
            "entity_id: String should have at most 200 characters",
        ),
    }
    for path, (field, detail) in cases.items():
        reply = alice.get(path)
        assert reply.status == 422, (path, reply.body)
        assert reply.content_type.startswith("application/problem+json")
        assert (reply.json()["field"], reply.json()["detail"]) == (field, detail)
    # Defaults, a repeated parameter (the last one counts) and unknown parameters (ignored).
    everything = alice.get("/v1/dashboards/30d")
    assert everything.status == 200, everything.body
    same = alice.get("/v1/dashboards/30d?entity_type=asset&entity_type=*&colour=red")
    assert same.status == 200 and same.json() == everything.json()
    one = alice.get("/v1/dashboards/30d?entity_type=asset&entity_id=a1")
    repeated = alice.get("/v1/dashboards/30d?entity_id=a9&entity_type=asset&entity_id=a1")
    assert repeated.status == 200 and repeated.json() == one.json()
