"""Rollup endpoints over real HTTP: filters, keyset paging (every row once, stable under inserts
of new periods), CSV equal to the JSON, the monthly breakdown, freshness, 422s for bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.http.conftest import Api
from tests.http.http_support import Client, daily_rows, insert_rows, weekly_rows
from warehouse.marts import mart

FIRST = date(2025, 1, 1)
KEY = ("metric_date", "entity_type", "entity_id", "event_type")


def _expected(rows: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    """Plain-Python filter and key order, values as JSON shows them."""
    start, end = where.pop("start", None), where.pop("end", None)
    kept = [
        r
        for r in rows
        if all(r[k] == v for k, v in where.items())
        and (start is None or r["metric_date"] >= start)
        and (end is None or r["metric_date"] < end)
    ]
    kept.sort(key=lambda r: tuple(str(r[k]) for k in KEY))
    return [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()} for r in kept]


def _all_pages(client: Client, path: str, params: dict[str, Any]) -> tuple[list[Any], int]:
    rows: list[Any] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        reply = client.get(f"{path}?{urlencode(query)}")
        assert reply.status == 200, reply.body
        body = reply.json()
        rows.extend(body["data"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, pages


def test_daily_filters_and_pages_match_python(api: Api) -> None:
    rows = daily_rows(FIRST, 20)
    with api.warehouse() as wh:
        insert_rows(wh, "daily_metrics", rows)
    client = api.client("alice")
    everything, pages = _all_pages(client, "/v1/metrics/daily", {"limit": 17})
    assert everything == _expected(rows)
    assert pages == -(-len(rows) // 17)
    assert list(everything[0]) == list(mart("daily_metrics").column_names)
    window = {"start": FIRST + timedelta(days=3), "end": FIRST + timedelta(days=9)}
    one, _ = _all_pages(
        client,
        "/v1/metrics/daily",
        {"entity_type": "asset", "event_type": "*", "limit": 4, **window},
    )
    assert one == _expected(rows, entity_type="asset", event_type="*", **window)
    assert {r["entity_id"] for r in one} == {"a1", "a2", "*"}
    exact, _ = _all_pages(
        client,
        "/v1/metrics/daily",
        {"entity_type": "asset", "entity_id": "a2", "event_type": "purchase"},
    )
    assert exact == _expected(rows, entity_type="asset", entity_id="a2", event_type="purchase")
    assert len(exact) == 20


def test_paging_is_stable_under_inserts_of_new_periods(api: Api) -> None:
    rows = daily_rows(FIRST, 10)
    with api.warehouse() as wh:
        insert_rows(wh, "daily_metrics", rows)
    client = api.client("bob")
    seen: list[Any] = []
    cursor = None
    inserted = False
    while True:
        query = {"limit": 9, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/v1/metrics/daily?{urlencode(query)}").json()
        seen.extend(body["data"])
        cursor = body["next_cursor"]
        if not inserted:
            # A build lands a period before the rows read so far and one after the last.
            with api.warehouse() as wh:
                insert_rows(wh, "daily_metrics", daily_rows(FIRST - timedelta(days=1), 1))
                insert_rows(wh, "daily_metrics", daily_rows(FIRST + timedelta(days=10), 1))
            inserted = True
        if cursor is None:
            break
    keys = [tuple(r[k] for k in KEY) for r in seen]
    assert len(keys) == len(set(keys)), "a row appeared twice"
    original = _expected(rows)
    assert [r for r in seen if r["metric_date"] <= (FIRST + timedelta(days=9)).isoformat()] == [
        r for r in original
    ]
    # The later period arrived ahead of the cursor, so it is read; the earlier one is not.
    assert {r["metric_date"] for r in seen} == {
        (FIRST + timedelta(days=d)).isoformat() for d in range(11)
    }


def test_csv_streams_every_row_equal_to_the_json(api: Api) -> None:
    weeks = [date(2025, 1, 6) + timedelta(days=7 * w) for w in range(12)]
    rows = weekly_rows(weeks)
    with api.warehouse() as wh:
        insert_rows(wh, "weekly_metrics", rows)
    client = api.client("alice")
    as_json, _ = _all_pages(client, "/v1/metrics/weekly", {"limit": 25})
    reply = client.get("/v1/metrics/weekly", headers={"Accept": "text/csv"})
    assert reply.status == 200
    assert reply.content_type.startswith("text/csv")
    table = list(csv.reader(io.StringIO(reply.body.decode())))
    header, body = table[0], table[1:]
    assert header == list(mart("weekly_metrics").column_names)
    assert len(body) == len(rows) == len(as_json)

    def text(value: Any) -> str:
        return "" if value is None else value if isinstance(value, str) else json.dumps(value)

    assert body == [[text(r[c]) for c in header] for r in as_json]
    # Numerics keep their decimals: growth to 2 places, averages as stored.
    first_growth = next(r for r in as_json if r["event_count_growth_pct"] is not None)
    source = next(
        r
        for r in rows
        if r["week_start"].isoformat() == first_growth["week_start"]
        and all(r[k] == first_growth[k] for k in ("entity_type", "entity_id", "event_type"))
    )
    assert first_growth["event_count_growth_pct"] == float(source["event_count_growth_pct"])
    filtered = client.get(
        "/v1/metrics/weekly?entity_id=a1&event_type=click", headers={"Accept": "text/csv"}
    )
    assert len(list(csv.reader(io.StringIO(filtered.body.decode())))) == 1 + len(weeks)


def test_monthly_weeks_breakdown_and_freshness(api: Api) -> None:
    breakdown = []
    for month, weeks in (
        (date(2025, 3, 1), (date(2025, 2, 24), date(2025, 3, 3))),
        (
            date(2025, 4, 1),
            (date(2025, 3, 31),),
        ),
    ):
        for week in weeks:
            for et, eid, ev in (("asset", "a1", "*"), ("*", "*", "*")):
                breakdown.append(
                    {
                        "month_start": month,
                        "week_start": week,
                        "entity_type": et,
                        "entity_id": eid,
                        "event_type": ev,
                        "event_count": 5,
                        "unique_actors": 2,
                        "revenue_cents": 10,
                    }
                )
    with api.warehouse() as wh:
        insert_rows(wh, "monthly_weekly_breakdown", breakdown)
        insert_rows(wh, "daily_metrics", daily_rows(FIRST, 3))
    client = api.client("carol")
    reply = client.get("/v1/metrics/monthly/2025-03/weeks?entity_id=a1")
    assert reply.status == 200
    body = reply.json()
    assert [(r["week_start"], r["entity_id"]) for r in body["data"]] == [
        ("2025-02-24", "a1"),
        ("2025-03-03", "a1"),
    ]
    assert body["next_cursor"] is None
    assert body["freshness"]["grain"] == "monthly"
    daily = client.get("/v1/metrics/daily?limit=1")
    assert daily.json()["freshness"] == {
        "grain": "daily",
        "latest_partition": "2025-01-03",
        "source": "table",
    }
    assert daily.headers["metrics-latest-partition"] == "2025-01-03"


def test_bad_input_is_a_422_naming_the_parameter(api: Api) -> None:
    with api.warehouse() as wh:
        insert_rows(wh, "daily_metrics", daily_rows(FIRST, 3))
    client = api.client("alice")
    cases = {
        "/v1/metrics/daily?limit=0": "limit",
        "/v1/metrics/daily?limit=100000": "limit",
        "/v1/metrics/daily?start=2025-13-01": "start",
        "/v1/metrics/daily?start=2025-02-01&end=2025-01-01": "start",
        "/v1/metrics/daily?cursor=garbage": "cursor",
        "/v1/metrics/monthly/2025-13/weeks": "month",
    }
    for path, field in cases.items():
        reply = client.get(path)
        assert reply.status == 422, (path, reply.body)
        assert reply.content_type.startswith("application/problem+json")
        assert reply.json()["field"] == field, (path, reply.json())
    assert client.get("/v1/metrics/hourly").status == 422
    # A cursor from one query cannot continue another.
    cursor = client.get("/v1/metrics/daily?limit=2").json()["next_cursor"]
    other = client.get(f"/v1/metrics/daily?limit=2&entity_id=a1&cursor={cursor}")
    assert other.status == 422 and other.json()["field"] == "cursor"


def test_missing_rollup_table_is_a_503_problem(api: Api) -> None:
    with api.warehouse() as wh:
        wh.execute(f"drop table {wh.schema}.weekly_metrics")
    reply = api.client("alice").get("/v1/metrics/weekly")
    assert reply.status == 503
    assert reply.content_type.startswith("application/problem+json")
    assert "build the rollups" in reply.json()["detail"]
    assert reply.headers["retry-after"] == "60"
