"""Custom-metric endpoints over real HTTP: create (201, `id`), visibility exactly as the service
applies it (404 for what a caller may not see, 403 for what it may see but not change), hostile
definitions refused with a 422 naming the field and nothing stored, test runs, calculation
checked against a plain-Python sum, stored values."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.http.conftest import Api
from tests.http.http_support import daily_rows, insert_rows

FIRST = date(2025, 1, 1)


def _definition(name: str, visibility: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "metric_type": "SUM",
        "data_source": "daily_metrics",
        "calculation_formula": "event_count",
        "filters": {"entity_type": "asset", "event_type": "*"},
        "dimensions": ["entity_id"],
        "visibility": visibility,
        **extra,
    }


def _stored_definitions(api: Api) -> int:
    with api.warehouse() as wh:
        if not wh.table_exists(wh.schema, "custom_metric_definitions"):
            return 0
        return int(wh.query(f"select count(*) from {wh.schema}.custom_metric_definitions")[0][0])


def test_create_read_visibility_and_edit_rules(api: Api) -> None:
    alice, bob, carol, admin = (api.client(w) for w in ("alice", "bob", "carol", "admin"))
    made = {}
    for visibility in ("PRIVATE", "TEAM", "ORGANIZATION", "PUBLIC"):
        reply = alice.post("/v1/custom-metrics", _definition(f"m {visibility}", visibility))
        assert reply.status == 201, reply.body
        body = reply.json()
        assert body["id"] and body["version"] == 1 and body["owner"] == "alice"
        assert body["team"] == "analytics" and body["organization"] == "acme"
        assert reply.headers["location"] == f"/v1/custom-metrics/{body['id']}"
        made[visibility] = body["id"]
    # Who sees what: alice everything; bob (acme, sales) ORGANIZATION and PUBLIC; carol
    # (globex, analytics: same team name, other organization) PUBLIC only; the acme admin every
    # non-PRIVATE definition of acme.
    expected = [
        (alice, {"PRIVATE", "TEAM", "ORGANIZATION", "PUBLIC"}),
        (bob, {"ORGANIZATION", "PUBLIC"}),
        (carol, {"PUBLIC"}),
        (admin, {"TEAM", "ORGANIZATION", "PUBLIC"}),
    ]
    for client, visible in expected:
        listed = client.get("/v1/custom-metrics").json()
        assert {d["visibility"] for d in listed["data"]} == visible
        for visibility, definition_id in made.items():
            reply = client.get(f"/v1/custom-metrics/{definition_id}")
            assert reply.status == (200 if visibility in visible else 404), (client, visibility)
            if reply.status == 404:
                assert reply.content_type.startswith("application/problem+json")
    # bob sees the ORGANIZATION definition but may not change it; the admin may.
    org_id = made["ORGANIZATION"]
    refused = bob.request("PATCH", f"/v1/custom-metrics/{org_id}", {"description": "mine"})
    assert refused.status == 403
    assert refused.content_type.startswith("application/problem+json")
    hidden = bob.request("PATCH", f"/v1/custom-metrics/{made['PRIVATE']}", {"description": "x"})
    assert hidden.status == 404
    changed = admin.request("PATCH", f"/v1/custom-metrics/{org_id}", {"description": "by admin"})
    assert changed.status == 200, changed.body
    assert changed.json()["version"] == 2 and changed.json()["description"] == "by admin"
    assert alice.get(f"/v1/custom-metrics/{org_id}?version=1").json()["description"] == ""
    # DELETE deactivates: gone from the list, history kept.
    assert bob.request("DELETE", f"/v1/custom-metrics/{made['PUBLIC']}").status == 403
    assert alice.request("DELETE", f"/v1/custom-metrics/{made['PUBLIC']}").status == 204
    active = {d["id"] for d in alice.get("/v1/custom-metrics").json()["data"]}
    assert made["PUBLIC"] not in active
    everything = alice.get("/v1/custom-metrics?include_inactive=true").json()["data"]
    assert made["PUBLIC"] in {d["id"] for d in everything}
    # Acting for someone else is refused and stores nothing.
    before = _stored_definitions(api)
    forged = bob.post("/v1/custom-metrics", _definition("forged", "PUBLIC", owner="alice"))
    assert forged.status == 403
    assert _stored_definitions(api) == before
    assert api.client().get("/v1/custom-metrics").status == 401


HOSTILE = [
    ({"calculation_formula": "event_count); drop table daily_metrics; --"}, "calculation_formula"),
    ({"calculation_formula": "pg_sleep(10)"}, "calculation_formula"),
    ({"calculation_formula": "event_count /* hidden */"}, "calculation_formula"),
    ({"where": "1=1 or (select count(*) from pg_catalog.pg_user) > 0"}, "where"),
    ({"data_source": "pg_catalog.pg_user"}, "data_source"),
    ({"dimensions": ["password"]}, "dimensions"),
    ({"calculation_formula": "(" * 500 + "event_count" + ")" * 500}, "calculation_formula"),
    ({"metric_type": "EXEC"}, "metric_type"),
    ({"unknown_field": 1}, "unknown_field"),
]


@pytest.mark.parametrize(("change", "field"), HOSTILE)
def test_hostile_definitions_are_422_naming_the_field_and_nothing_is_stored(
    api: Api, change: dict[str, Any], field: str
) -> None:
    alice = api.client("alice")
    before = _stored_definitions(api)
    reply = alice.post("/v1/custom-metrics", {**_definition("bad", "PRIVATE"), **change})
    assert reply.status == 422, reply.body
    assert reply.content_type.startswith("application/problem+json")
    assert reply.json()["field"].split(".")[0].split("[")[0] == field, reply.json()
    assert _stored_definitions(api) == before
    tested = alice.post("/v1/custom-metrics/test", {**_definition("bad", "PRIVATE"), **change})
    assert tested.status == 422


def test_test_run_calculate_and_values_match_python(api: Api) -> None:
    rows = daily_rows(FIRST, 14)
    with api.warehouse() as wh:
        insert_rows(wh, "daily_metrics", rows)
    alice = api.client("alice")
    start, end = FIRST + timedelta(days=2), FIRST + timedelta(days=9)

    def expected(lo: date, hi: date) -> dict[str, int]:
        sums: dict[str, int] = {}
        for r in rows:
            if (
                r["entity_type"] == "asset"
                and r["event_type"] == "*"
                and lo <= r["metric_date"] < hi
            ):
                sums[r["entity_id"]] = sums.get(r["entity_id"], 0) + r["event_count"]
        return sums

    tested = alice.post(
        f"/v1/custom-metrics/test?start={start}&end={end}", _definition("t", "PRIVATE")
    )
    assert tested.status == 200, tested.body
    body = tested.json()
    assert body["columns"] == ["entity_id", "value"]
    assert {r[0]: r[1] for r in body["rows"]} == expected(start, end)
    assert (body["answered_from"], body["fallback_reason"]) == ("daily_metrics", None)
    assert _stored_definitions(api) == 0

    definition_id = alice.post("/v1/custom-metrics", _definition("c", "TEAM")).json()["id"]
    reply = alice.post(
        f"/v1/custom-metrics/{definition_id}/calculate", {"start": str(start), "end": str(end)}
    )
    assert reply.status == 200, reply.body
    values = reply.json()["values"]
    assert {v["dimensions"]["entity_id"]: v["value"] for v in values} == expected(start, end)
    by_week = alice.post(
        f"/v1/custom-metrics/{definition_id}/calculate",
        {"start": "2025-01-06", "end": "2025-01-20", "grain": "week"},
    ).json()["values"]
    for week in (date(2025, 1, 6), date(2025, 1, 13)):
        got = {
            v["dimensions"]["entity_id"]: v["value"]
            for v in by_week
            if v["period_start"] == week.isoformat()
        }
        assert got == expected(week, week + timedelta(days=7))
    stored = alice.get(f"/v1/custom-metrics/{definition_id}/values").json()["data"]
    assert {(v["period_start"], v["dimensions"]["entity_id"]) for v in stored} >= {
        (start.isoformat(), k) for k in expected(start, end)
    }
    # Outsiders cannot calculate or read values of a definition they cannot see.
    carol = api.client("carol")
    assert (
        carol.post(
            f"/v1/custom-metrics/{definition_id}/calculate",
            {"start": "2025-01-01", "end": "2025-01-02"},
        ).status
        == 404
    )
    assert carol.get(f"/v1/custom-metrics/{definition_id}/values").status == 404
    bad = alice.post(
        f"/v1/custom-metrics/{definition_id}/calculate",
        {"start": "2025-01-05", "end": "2025-01-01"},
    )
    assert bad.status == 422 and bad.json()["field"] == "start"


def test_series_compare_and_funnel_over_http(api: Api) -> None:
    """Per-period answers with previous value and growth, and a FUNNEL, through the API."""
    from datetime import UTC, datetime
    from decimal import ROUND_HALF_UP, Decimal

    from custom_metrics import load_examples

    rows = daily_rows(FIRST, 14)
    steps = ["page_view", "asset_checkout", "purchase"]
    events = [
        (f"f{i}", datetime(2025, 1, 6 + i // 3, 9 + i % 3, tzinfo=UTC), steps[i % 3], f"u{i // 3}")
        for i in range(8)  # u0, u1 go through all three steps; u2 views and checks out
    ]
    with api.warehouse() as wh:
        insert_rows(wh, "daily_metrics", rows)
        wh.execute(
            f"create table {wh.schema}.stg_events (event_id text, occurred_at timestamptz, "
            "event_date date, event_type text, actor_id text, entity_type text, entity_id text, "
            "revenue_cents bigint, ingested_at timestamptz)"
        )
        insert_rows(
            wh,
            "stg_events",
            [
                {
                    "event_id": e,
                    "occurred_at": at,
                    "event_date": at.date(),
                    "event_type": kind,
                    "actor_id": who,
                    "entity_type": "asset",
                    "entity_id": "a1",
                    "revenue_cents": None,
                    "ingested_at": at,
                }
                for e, at, kind, who in events
            ],
        )
    alice = api.client("alice")
    start, end = FIRST + timedelta(days=3), FIRST + timedelta(days=9)
    growth = _definition("growth", "PRIVATE", time_grain="day", compare_to="previous_period")
    tested = alice.post(f"/v1/custom-metrics/test?start={start}&end={end}", growth)
    assert tested.status == 200, tested.body
    body = tested.json()
    assert body["columns"] == [
        "period_start",
        "period_end",
        "entity_id",
        "previous_value",
        "growth_pct",
        "value",
    ]

    def day_sum(day: date, entity: str) -> int | None:
        found = [
            r["event_count"]
            for r in rows
            if r["metric_date"] == day
            and r["entity_type"] == "asset"
            and r["event_type"] == "*"
            and r["entity_id"] == entity
        ]
        return sum(found) if found else None

    assert len(body["rows"]) == 6 * 3  # six days; a1, a2 and the "*" total
    for lo, hi, entity, previous, change, value in body["rows"]:
        day = date.fromisoformat(lo)
        assert date.fromisoformat(hi) == day + timedelta(days=1)
        assert value == day_sum(day, entity)
        assert previous == day_sum(day - timedelta(days=1), entity)
        want = (
            None
            if not previous
            else (
                Decimal(100)
                * (Decimal(str(value)) - Decimal(str(previous)))
                / Decimal(str(previous))
            ).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        )
        assert change == (None if want is None else float(want))

    funnel = {**dict(load_examples()["view_checkout_purchase_funnel"]), "visibility": "PRIVATE"}
    funnel = {k: (v.value if hasattr(v, "value") else v) for k, v in funnel.items()}
    created = alice.post("/v1/custom-metrics", funnel)
    assert created.status == 201, created.body
    reply = alice.post(
        f"/v1/custom-metrics/{created.json()['id']}/calculate",
        {"start": "2025-01-06", "end": "2025-01-13"},
    )
    assert reply.status == 200, reply.body
    values = reply.json()["values"]
    assert [(v["dimensions"]["step"], v["value"]) for v in values] == [(1, 3), (2, 3), (3, 2)]
    assert [v["conversion_from_first_pct"] for v in values] == [100.0, 100.0, 66.67]
