"""Partitions follow METRICS_WEEK_START and METRICS_PARTITIONS_START; schedule ticks request the
previous complete period, at the cron times, without moving partition boundaries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dagster import Definitions, build_schedule_context

from orchestration.definitions import build_definitions
from orchestration.partitions import (
    Grain,
    contiguous_ranges,
    dagster_day_offset,
    keys_overlapping,
    partitions_def,
    window_of_keys,
)
from orchestration.schedules import TICKS, schedule_name
from orchestration.settings import OrchestrationSettings


def _settings(monkeypatch: pytest.MonkeyPatch, week_start: str = "monday") -> OrchestrationSettings:
    monkeypatch.setenv("METRICS_WEEK_START", week_start)
    monkeypatch.setenv("METRICS_PARTITIONS_START", "2024-01-01")
    return OrchestrationSettings.from_env()


def _defs(settings: OrchestrationSettings) -> Definitions:
    return build_definitions(settings)


def _tick(defs: Definitions, grain: Grain, when: datetime) -> Any:
    """Evaluate a schedule tick as the daemon does (partitions resolved against the job)."""
    schedule = defs.resolve_schedule_def(schedule_name(grain))
    context = build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    return schedule.evaluate_tick(context)


@pytest.mark.parametrize(
    ("week_start", "first_key", "weekday"),
    # The first week is the one containing METRICS_PARTITIONS_START (2024-01-01, a Monday), so
    # every daily partition belongs to some weekly one.
    [("monday", "2024-01-01", 0), ("sunday", "2023-12-31", 6), ("wednesday", "2023-12-27", 2)],
)
def test_weekly_partitions_start_on_the_configured_day(
    monkeypatch: pytest.MonkeyPatch, week_start: str, first_key: str, weekday: int
) -> None:
    settings = _settings(monkeypatch, week_start)
    weekly = partitions_def(Grain.WEEK, settings)
    keys = weekly.get_partition_keys()
    assert keys[0] == first_key
    assert all(date.fromisoformat(k).weekday() == weekday for k in keys)
    window = weekly.time_window_for_partition_key(keys[10])
    assert window.start.tzinfo is not None and window.start.utcoffset() == timedelta(0)
    assert window.start.hour == 0 and window.end - window.start == timedelta(days=7)
    assert dagster_day_offset(settings.week_start_index) == (weekday + 1) % 7


def test_daily_and_monthly_partitions_are_utc_days_and_months(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch)
    daily, monthly = partitions_def(Grain.DAY, settings), partitions_def(Grain.MONTH, settings)
    assert daily.get_first_partition_key() == monthly.get_first_partition_key() == "2024-01-01"
    feb = monthly.time_window_for_partition_key("2024-02-01")
    assert (feb.start, feb.end) == (
        datetime(2024, 2, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
    )
    assert window_of_keys(Grain.MONTH, "2024-02-01", "2024-03-01") == (
        date(2024, 2, 1),
        date(2024, 4, 1),
    )
    assert keys_overlapping(Grain.WEEK, date(2025, 1, 1), date(2025, 1, 15), settings) == [
        "2024-12-30",
        "2025-01-06",
        "2025-01-13",
    ]


def test_partitions_start_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PARTITIONS_START", "2025-03-15")
    settings = OrchestrationSettings.from_env()
    assert partitions_def(Grain.DAY, settings).get_first_partition_key() == "2025-03-15"
    # Weeks and months start with the period containing the first day, so none is left out.
    assert partitions_def(Grain.WEEK, settings).get_first_partition_key() == "2025-03-10"
    assert partitions_def(Grain.MONTH, settings).get_first_partition_key() == "2025-03-01"
    monkeypatch.setenv("METRICS_PARTITIONS_START", "15/03/2025")
    with pytest.raises(ValueError, match="METRICS_PARTITIONS_START"):
        OrchestrationSettings.from_env()


@pytest.mark.parametrize(
    ("grain", "week_start", "tick", "expected"),
    [
        (Grain.DAY, "monday", datetime(2025, 3, 5, 2, 0), "2025-03-04"),
        (Grain.DAY, "monday", datetime(2025, 1, 1, 2, 0), "2024-12-31"),
        (Grain.WEEK, "monday", datetime(2025, 3, 10, 4, 0), "2025-03-03"),
        (Grain.WEEK, "sunday", datetime(2025, 3, 10, 4, 0), "2025-03-02"),
        (Grain.WEEK, "monday", datetime(2025, 1, 6, 4, 0), "2024-12-30"),
        (Grain.MONTH, "monday", datetime(2025, 3, 2, 5, 0), "2025-02-01"),
        (Grain.MONTH, "monday", datetime(2025, 1, 2, 5, 0), "2024-12-01"),
    ],
)
def test_schedule_ticks_request_the_previous_period(
    monkeypatch: pytest.MonkeyPatch, grain: Grain, week_start: str, tick: datetime, expected: str
) -> None:
    settings = _settings(monkeypatch, week_start)
    [request] = _tick(_defs(settings), grain, tick.replace(tzinfo=UTC)).run_requests or []
    assert request.partition_key == expected
    assert request.tags["dagster/partition"] == expected
    assert request.run_key == expected
    assert request.tags["metrics/trigger"] == "schedule"
    assert partitions_def(grain, settings).has_partition_key(expected)


def test_schedules_use_cron_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    expected = {Grain.DAY: "0 2 * * *", Grain.WEEK: "0 4 * * 1", Grain.MONTH: "0 5 2 * *"}
    assert expected == {grain: tick.cron for grain, tick in TICKS.items()}
    defs = _defs(settings)
    for grain, cron in expected.items():
        schedule = defs.resolve_schedule_def(schedule_name(grain))
        assert schedule.cron_schedule == cron
        assert schedule.execution_timezone == "UTC"
    # The partition boundaries stay at UTC midnight (no hour or minute offset).
    for grain in Grain:
        first = partitions_def(grain, settings).get_first_partition_window()
        assert first is not None and (first.start.hour, first.start.minute) == (0, 0)


def test_schedule_before_the_first_partition_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    data = _tick(_defs(settings), Grain.MONTH, datetime(2024, 1, 2, 5, tzinfo=UTC))
    assert not data.run_requests and data.skip_message


def test_contiguous_ranges() -> None:
    keys = ["2024-03-04", "2024-02-26", "2024-03-18", "2024-03-04"]
    assert contiguous_ranges(Grain.WEEK, keys) == [
        ("2024-02-26", "2024-03-04"),
        ("2024-03-18", "2024-03-18"),
    ]
    assert contiguous_ranges(Grain.MONTH, ["2024-12-01", "2025-01-01"]) == [
        ("2024-12-01", "2025-01-01")
    ]
