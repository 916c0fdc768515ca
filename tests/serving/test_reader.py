"""MetricsReader against rollup tables in DuckDB, PostgreSQL and (the reads, under the spark
marker) Spark, and the cached dashboard."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from serving.cache import MetricsCache
from serving.invalidation import invalidate_for_materialization
from serving.reader import MetricsReader
from serving.rows import LatestPeriod, MetricsRow
from tests.targets import on_every_warehouse
from warehouse import WarehouseConfig, connect
from warehouse.calendar import Grain

from .conftest import ROLLUPS, TODAY


def _daily(entity_id: str = "a1", event_type: str = "*") -> dict[date, dict[str, Any]]:
    return {
        r["metric_date"]: r
        for r in ROLLUPS["daily_metrics"][1]
        if r["entity_id"] == entity_id and r["event_type"] == event_type
    }


def _strip(row: dict[str, Any], period: str) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("entity_type", "entity_id", "event_type")}
    out["period_start"] = out.pop(period)
    return out


@on_every_warehouse("rollups")
def test_daily_series_equals_the_rows(rollups: WarehouseConfig) -> None:
    reader = MetricsReader(today=TODAY)
    rows = reader.daily("asset", "a1", date(2025, 3, 1), date(2025, 3, 5))
    expected = _daily()
    assert [r.period_start for r in rows] == [date(2025, 3, d) for d in range(1, 5)]
    for row in rows:
        source = expected[row.period_start]
        assert row.as_dict() == {
            "period_start": source["metric_date"],
            "event_count": source["event_count"],
            "unique_actors": source["unique_actors"],
            "revenue_cents": source["revenue_cents"],
        }
    purchases = reader.daily(
        "asset", "a1", date(2025, 2, 1), date(2025, 4, 1), event_type="purchase"
    )
    assert [r.period_start for r in purchases] == sorted(_daily(event_type="purchase"))
    assert sum(r.revenue_cents for r in purchases) == sum(
        r["revenue_cents"] for r in _daily(event_type="purchase").values()
    )


@on_every_warehouse("rollups")
def test_ranges_are_half_open(rollups: WarehouseConfig) -> None:
    reader = MetricsReader(today=TODAY)
    assert reader.daily("asset", "a1", date(2025, 3, 4), date(2025, 3, 4)) == []
    assert len(reader.daily("asset", "a1", date(2025, 3, 4), date(2025, 3, 5))) == 1


@on_every_warehouse("rollups")
def test_weekly_and_monthly_series_equal_the_rows(rollups: WarehouseConfig) -> None:
    reader = MetricsReader(today=TODAY)
    weekly = reader.weekly("asset", "a1", date(2025, 1, 1), date(2025, 4, 1))
    assert [r.as_dict() for r in weekly] == [
        _strip(r, "week_start") for r in ROLLUPS["weekly_metrics"][1]
    ]
    assert weekly[1].revenue_growth_pct == Decimal("-20.00")
    assert all(isinstance(r, MetricsRow) and r.grain is Grain.WEEK for r in weekly)
    monthly = reader.monthly("asset", "a1", date(2025, 1, 1), date(2025, 2, 1))
    assert [r.as_dict() for r in monthly] == [
        _strip(ROLLUPS["monthly_metrics"][1][0], "month_start")
    ]
    assert reader.weekly("asset", "a2", date(2025, 1, 1), date(2025, 4, 1)) == []


@on_every_warehouse("rollups")
def test_latest_period_with_growth(rollups: WarehouseConfig) -> None:
    reader = MetricsReader(today=TODAY)  # Monday 2025-03-10
    week = reader.latest_period("weekly", "asset", "a1")
    assert week is not None
    assert (week.period_start, week.period_end) == (date(2025, 3, 3), date(2025, 3, 10))
    assert week.event_count == 910 and week.prev_event_count == 700
    assert week.event_count_growth_pct == Decimal("30.00")
    month = reader.latest_period("monthly", "asset", "a1")
    assert month is not None and month.period_start == date(2025, 2, 1)
    assert month.revenue_growth_pct == Decimal("-9.68")
    day = reader.latest_period("daily", "asset", "a1")
    assert day is not None and day.period_start == date(2025, 3, 9)
    assert isinstance(day, LatestPeriod) and day.grain is Grain.DAY
    cur, prev = _daily()[date(2025, 3, 9)], _daily()[date(2025, 3, 8)]
    assert day.event_count == cur["event_count"]
    assert day.prev_event_count == prev["event_count"]
    expected = Decimal(100 * (cur["event_count"] - prev["event_count"]) / prev["event_count"])
    assert day.event_count_growth_pct == expected.quantize(Decimal("0.01"))
    assert day.revenue_growth_pct is None  # the day before had no revenue
    assert reader.latest_period("weekly", "asset", "nobody") is None


def test_level_arguments_are_checked(rollups: WarehouseConfig) -> None:
    reader = MetricsReader(today=TODAY)
    with pytest.raises(ValueError):
        reader.daily("*", "a1", date(2025, 3, 1), date(2025, 3, 2))
    with pytest.raises(ValueError):
        reader.latest_period("hourly", "asset", "a1")


@on_every_warehouse("rollups")
def test_dashboard_payload(rollups: WarehouseConfig, cache: MetricsCache) -> None:
    reader = MetricsReader(cache, today=TODAY)
    payload = reader.get_dashboard("u1", "asset", "a1", "7d")
    json.dumps(payload)  # plain JSON, ready for an HTTP response
    days = [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]
    assert payload["series"]["period_start"] == [d.isoformat() for d in days]
    assert payload["series"]["event_count"] == [_daily()[d]["event_count"] for d in days]
    assert payload["series"]["revenue_cents"] == [_daily()[d]["revenue_cents"] for d in days]
    assert payload["totals"]["event_count"] == sum(_daily()[d]["event_count"] for d in days)
    assert payload["totals"]["active_periods"] == 7
    assert payload["latest"]["weekly"]["event_count_growth_pct"] == 30.0
    assert payload["latest"]["monthly"]["event_count_growth_pct"] == 12.9
    assert (payload["start"], payload["end"], payload["grain"]) == (
        "2025-03-03",
        "2025-03-10",
        "daily",
    )

    yearly = reader.get_dashboard("u1", "asset", "a1", "12m")
    assert yearly["grain"] == "monthly"
    assert yearly["series"]["period_start"][0] == "2024-03-01"
    assert yearly["series"]["period_start"][-1] == "2025-02-01"
    assert yearly["series"]["event_count"] == [0] * 10 + [3100, 3500]
    assert yearly["series"]["revenue_growth_pct"][-1] == -9.68

    month = reader.get_dashboard("u1", "asset", "a1", "30d")
    assert len(month["series"]["period_start"]) == 30
    assert month["series"]["event_count"][:10] == [0] * 10  # before the data starts: zeros


@pytest.mark.parametrize("bad", ["1d", "30", "", "7D", None])
def test_dashboard_rejects_unknown_ranges(bad: Any, duckdb_rollups: WarehouseConfig) -> None:
    with pytest.raises(ValueError, match="7d, 30d, 90d, 12m"):
        MetricsReader(today=TODAY).get_dashboard("u1", "asset", "a1", bad)


def _set_views(config: WarehouseConfig, day: date, count: int) -> None:
    """Play the batch side: rewrite one day's '*' row, as a partition run would."""
    with connect(config) as wh:
        wh.execute(
            f"update {wh.schema}.daily_metrics set event_count = {wh.param('n')} "
            f"where metric_date = {wh.param('d')} and entity_id = 'a1' and event_type = '*'",
            {"n": count, "d": day},
        )


def test_dashboard_is_served_from_cache_until_its_data_is_materialized(
    rollups: WarehouseConfig, cache: MetricsCache
) -> None:
    reader = MetricsReader(cache, today=TODAY)
    first = reader.get_dashboard("u1", "asset", "a1", "7d")
    _set_views(rollups, date(2025, 3, 5), 12345)
    second = reader.get_dashboard("u1", "asset", "a1", "7d")
    assert second == first  # served from the cache: the warehouse was not read
    stats = cache.get_stats()["prefixes"]["metrics:dashboard"]
    assert (stats["hits"], stats["misses"]) == (1, 1)

    # A day outside the window, or another grain's unrelated period: still cached.
    invalidate_for_materialization(cache, "daily", "2025-02-20")
    invalidate_for_materialization(cache, "weekly", "2025-01-06")
    invalidate_for_materialization(cache, "monthly", "2024-06-01")
    assert reader.get_dashboard("u1", "asset", "a1", "7d") == first

    # The day's partition materializes: the dashboard recomputes and shows the new figure.
    invalidate_for_materialization(cache, "daily", "2025-03-05")
    third = reader.get_dashboard("u1", "asset", "a1", "7d")
    assert third["series"]["event_count"][2] == 12345
    assert reader.get_dashboard("u1", "asset", "a1", "7d") == third


def test_dashboard_follows_weekly_growth_and_user_and_entity_tags(
    rollups: WarehouseConfig, cache: MetricsCache
) -> None:
    reader = MetricsReader(cache, today=TODAY)
    reader.get_dashboard("u1", "asset", "a1", "30d")
    reader.get_dashboard("u2", "asset", "a1", "30d")
    # Re-running the week before the shown week rewrites the shown week's growth.
    invalidate_for_materialization(cache, "weekly", "2025-02-24")
    reader.get_dashboard("u1", "asset", "a1", "30d")
    cache.invalidate_by_tag("user:u2")
    reader.get_dashboard("u1", "asset", "a1", "30d")  # u1 unaffected by u2's tag
    reader.get_dashboard("u2", "asset", "a1", "30d")
    cache.invalidate_by_tag("entity:asset:a1")
    reader.get_dashboard("u1", "asset", "a1", "30d")
    stats = cache.get_stats()["prefixes"]["metrics:dashboard"]
    assert (stats["hits"], stats["misses"]) == (1, 5)


def test_dashboard_json_shares_the_entry(rollups: WarehouseConfig, cache: MetricsCache) -> None:
    reader = MetricsReader(cache, today=TODAY)
    payload = reader.get_dashboard("u1", "asset", "a1", "90d")
    raw = reader.get_dashboard_json("u1", "asset", "a1", "90d")
    assert json.loads(raw) == payload
    stats = cache.get_stats()["prefixes"]["metrics:dashboard"]
    assert (stats["hits"], stats["misses"]) == (1, 1)
    assert (
        json.loads(MetricsReader(today=TODAY).get_dashboard_json("u1", "asset", "a1", "90d"))[
            "series"
        ]
        == payload["series"]
    )


def test_as_of_day_is_part_of_the_key(rollups: WarehouseConfig, cache: MetricsCache) -> None:
    today = MetricsReader(cache, today=TODAY).get_dashboard("u1", "asset", "a1", "7d")
    tomorrow = MetricsReader(cache, today=TODAY + timedelta(days=1)).get_dashboard(
        "u1", "asset", "a1", "7d"
    )
    assert today["end"] == "2025-03-10" and tomorrow["end"] == "2025-03-11"


def test_period_metrics_cached_under_the_documented_key(
    rollups: WarehouseConfig, cache: MetricsCache
) -> None:
    reader = MetricsReader(cache, today=TODAY)
    day = reader.period_metrics("daily", "asset", "a1", date(2025, 3, 5))
    assert set(day) == {"*", "page_view", "purchase"}
    assert day["*"].event_count == _daily()[date(2025, 3, 5)]["event_count"]
    assert day["*"].period_start == date(2025, 3, 5) and day["*"].grain is Grain.DAY
    week = reader.period_metrics("weekly", "asset", "a1", date(2025, 3, 3))
    assert week["*"].avg_daily_events == Decimal("130.000000")  # a Decimal again
    assert week["*"].event_count_growth_pct == Decimal("30.00")
    again = reader.period_metrics("weekly", "asset", "a1", date(2025, 3, 3))  # from the cache
    assert again == week
    assert isinstance(again["*"].avg_daily_events, Decimal)
    assert cache.client.exists(cache.entry_key("metrics:daily:asset:a1:2025-03-05"))
    assert cache.client.exists(cache.entry_key("metrics:weekly:asset:a1:2025-03-03"))
    reader.period_metrics("monthly", "asset", "a1", date(2025, 2, 1))
    assert cache.client.exists(cache.entry_key("metrics:monthly:asset:a1:2025-02"))

    _set_views(rollups, date(2025, 3, 5), 777)
    assert reader.period_metrics("daily", "asset", "a1", date(2025, 3, 5)) == day
    invalidate_for_materialization(cache, "daily", "2025-03-05")
    assert reader.period_metrics("daily", "asset", "a1", date(2025, 3, 5))["*"].event_count == 777
    with pytest.raises(ValueError):
        reader.period_metrics("monthly", "asset", "a1", date(2025, 2, 3))


def test_warming_dashboards(rollups: WarehouseConfig, cache: MetricsCache) -> None:
    reader = MetricsReader(cache, today=TODAY)
    entries = [reader.dashboard_entry("u1", "asset", "a1", r) for r in ("7d", "30d", "12m")]
    assert cache.warm_cache(entries) == 3
    reader.get_dashboard("u1", "asset", "a1", "30d")
    assert cache.get_stats()["prefixes"]["metrics:dashboard"]["hits"] == 1


def test_reader_without_cache_and_with_redis_down(
    rollups: WarehouseConfig, closed_port: int
) -> None:
    plain = MetricsReader(today=TODAY).get_dashboard("u1", "asset", "a1", "7d")
    down = MetricsCache.from_url(f"redis://127.0.0.1:{closed_port}/0")
    payload = MetricsReader(down, today=TODAY).get_dashboard("u1", "asset", "a1", "7d")
    assert payload["series"] == plain["series"]
    assert down.get_stats()["errors"] == 1


@on_every_warehouse("rollups")
def test_daily_growth_rounds_half_away_from_zero_as_the_rollups_do(
    rollups: WarehouseConfig,
) -> None:
    """33 vs 32 events is 3.125%: the rollups store +3.13 (half away from zero), so must the
    reader's day-over-day growth, which it computes itself (daily_metrics has no prev_*)."""
    with connect(rollups) as wh:
        for day, count in ((date(2025, 3, 8), 32), (date(2025, 3, 9), 33)):
            wh.execute(
                f"insert into {wh.schema}.daily_metrics values "
                f"({wh.param('d')}, 'asset', 'halfway', '*', {wh.param('n')}, 1, 0)",
                {"d": day, "n": count},
            )
    day = MetricsReader(today=TODAY).latest_period("daily", "asset", "halfway")
    assert day is not None and (day.event_count, day.prev_event_count) == (33, 32)
    independent = (Decimal(100) * (33 - 32) / 32).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert day.event_count_growth_pct == independent == Decimal("3.13")
