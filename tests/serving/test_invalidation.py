"""Invalidation mapping: which tags a materialization bumps, and that this is exact."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.cache import MetricsCache
from serving.invalidation import (
    daily_cover_tags,
    invalidate_custom_metric,
    invalidate_for_materialization,
    parse_partition_key,
    period_tags,
    tags_for_custom_metric,
    tags_for_materialization,
)


def test_one_day_bumps_its_day_week_and_month() -> None:
    assert tags_for_materialization("daily", date(2025, 3, 5), date(2025, 3, 6)) == [
        "period:daily:2025-03-05",
        "period:daily-week:2025-03-03",
        "period:daily-month:2025-03-01",
    ]


def test_weekly_and_monthly_also_bump_the_next_period() -> None:
    assert tags_for_materialization("weekly", date(2025, 3, 3), date(2025, 3, 10)) == [
        "period:weekly:2025-03-03",
        "period:weekly:2025-03-10",
    ]
    assert tags_for_materialization("monthly", date(2025, 1, 1), date(2025, 3, 1)) == [
        "period:monthly:2025-01-01",
        "period:monthly:2025-02-01",
        "period:monthly:2025-03-01",
    ]


def test_huge_backfill_falls_back_to_the_grain_tag() -> None:
    tags = tags_for_materialization("daily", date(2020, 1, 1), date(2025, 1, 1))
    assert tags == ["grain:daily"]
    assert tags_for_materialization("daily", date(2025, 1, 1), date(2025, 1, 1)) == []
    with pytest.raises(ValueError):
        tags_for_materialization("daily", date(2025, 1, 2), date(2025, 1, 1))
    with pytest.raises(ValueError):
        tags_for_materialization("hourly", date(2025, 1, 1), date(2025, 1, 2))


def test_parse_partition_key() -> None:
    assert parse_partition_key("daily", "2025-03-05") == (date(2025, 3, 5), date(2025, 3, 6))
    assert parse_partition_key("weekly", "2025-03-03") == (date(2025, 3, 3), date(2025, 3, 10))
    assert parse_partition_key("monthly", "2025-12-01") == (date(2025, 12, 1), date(2026, 1, 1))
    assert parse_partition_key("monthly", "2025-02") == (date(2025, 2, 1), date(2025, 3, 1))
    for grain, bad in [("daily", "2025/03/05"), ("monthly", "2025-02-03"), ("daily", "x")]:
        with pytest.raises(ValueError):
            parse_partition_key(grain, bad)


def test_cover_of_a_window_is_compact() -> None:
    # 2025-02-27 .. 2025-05-05: days, a week, whole March and April, days.
    tags = daily_cover_tags(date(2025, 2, 27), date(2025, 5, 6))
    assert "period:daily-month:2025-03-01" in tags
    assert "period:daily-month:2025-04-01" in tags
    assert "period:daily-week:2025-05-05" not in tags  # only one day of that week is inside
    assert len(tags) < 15


_days = st.dates(min_value=date(2023, 1, 1), max_value=date(2026, 12, 31))


@settings(max_examples=400, deadline=None)
@given(start=_days, length=st.integers(min_value=0, max_value=120), day=_days)
def test_daily_invalidation_is_exact(start: date, length: int, day: date) -> None:
    """A day's materialization invalidates a window's entry iff the day is in the window."""
    end = start + timedelta(days=length)
    cover = set(daily_cover_tags(start, end))
    bumped = set(tags_for_materialization("daily", day, day + timedelta(days=1)))
    assert bool(cover & bumped) == (start <= day < end)
    if length <= 92:
        assert len(cover) <= 25


def test_weekly_entry_follows_the_previous_weeks_rerun() -> None:
    entry = set(period_tags("weekly", date(2025, 3, 3), date(2025, 3, 10)))
    assert entry & set(tags_for_materialization("weekly", date(2025, 2, 24), date(2025, 3, 3)))
    assert entry & set(tags_for_materialization("weekly", date(2025, 3, 3), date(2025, 3, 10)))
    assert not entry & set(tags_for_materialization("weekly", date(2025, 3, 10), date(2025, 3, 17)))
    assert not entry & set(tags_for_materialization("daily", date(2025, 3, 4), date(2025, 3, 5)))


def test_invalidate_for_materialization_bumps_in_redis(cache: MetricsCache) -> None:
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    tags = daily_cover_tags(date(2025, 3, 1), date(2025, 3, 31))
    cache.get_or_compute("k:window", compute, tags=tags)
    assert invalidate_for_materialization(cache, "daily", "2025-04-02") != []
    cache.get_or_compute("k:window", compute, tags=tags)
    assert len(calls) == 1
    invalidate_for_materialization(cache, "daily", "2025-03-17")
    cache.get_or_compute("k:window", compute, tags=tags)
    assert len(calls) == 2
    invalidate_for_materialization(cache, "daily", "2025-02-01", "2025-03-01")  # range ends 3-02
    cache.get_or_compute("k:window", compute, tags=tags)
    assert len(calls) == 3


def test_custom_metric_change_invalidates_its_tag(cache: MetricsCache) -> None:
    tags = tags_for_custom_metric("m-1", "daily_metrics", date(2025, 3, 1), date(2025, 3, 8))
    assert tags[0] == "custom:m-1" and "grain:daily" in tags
    calls: list[int] = []
    cache.get_or_compute(
        "metrics:custom:m-1:2025-03-01:2025-03-08", lambda: calls.append(1), tags=tags
    )
    cache.get_or_compute(
        "metrics:custom:m-2:2025-03-01:2025-03-08",
        lambda: calls.append(2),
        tags=tags_for_custom_metric("m-2"),
    )
    assert invalidate_custom_metric(cache, "m-1") == "custom:m-1"
    cache.get_or_compute(
        "metrics:custom:m-1:2025-03-01:2025-03-08", lambda: calls.append(1), tags=tags
    )
    cache.get_or_compute(
        "metrics:custom:m-2:2025-03-01:2025-03-08",
        lambda: calls.append(2),
        tags=tags_for_custom_metric("m-2"),
    )
    assert calls == [1, 2, 1]
    with pytest.raises(ValueError):
        tags_for_custom_metric("m-1", "raw_events")
