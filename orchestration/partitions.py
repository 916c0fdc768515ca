"""Daily, weekly and monthly time partitions (UTC, one start date), on the project's one calendar.

The grain and the period arithmetic are `warehouse.calendar`'s, shared with the SQL's week start,
the reader and the custom metrics. Weekly partitions start on METRICS_WEEK_START; Dagster's
`day_offset` counts from Sunday (0) while Python's `weekday()` counts from Monday (0), and
`dagster_day_offset` is the one place that converts. Schedules never use hour/minute offsets
(those would move partition boundaries away from UTC midnight).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

from orchestration.settings import OrchestrationSettings
from warehouse.calendar import Calendar, Grain, period_after

if TYPE_CHECKING:
    from dagster import TimeWindowPartitionsDefinition

__all__ = ["Grain", "partitions_def"]

TIMEZONE = "UTC"


def dagster_day_offset(week_start_index: int) -> int:
    """Dagster's weekly `day_offset` (0 = Sunday) for a Python weekday index (0 = Monday)."""
    return (week_start_index + 1) % 7


def partitions_def(grain: Grain, settings: OrchestrationSettings) -> TimeWindowPartitionsDefinition:
    """The partitions of one grain, starting with the period that contains
    `settings.partitions_start`, so no day of the daily partitions falls outside every week or
    month (Dagster would otherwise start at the first week or month boundary after it).

    Dagster is imported here, not with the module: the calendar helpers below serve the CLI's
    `serve`, `tokens` and `custom` commands, which start without Dagster (about 1.5 s, 100 MB)."""
    from dagster import (
        DailyPartitionsDefinition,
        MonthlyPartitionsDefinition,
        WeeklyPartitionsDefinition,
    )

    first_day = settings.partitions_start
    if grain is Grain.DAY:
        return DailyPartitionsDefinition(start_date=first_day.isoformat(), timezone=TIMEZONE)
    if grain is Grain.WEEK:
        return WeeklyPartitionsDefinition(
            start_date=period_start(grain, first_day, settings.week_start_index).isoformat(),
            day_offset=dagster_day_offset(settings.week_start_index),
            timezone=TIMEZONE,
        )
    return MonthlyPartitionsDefinition(
        start_date=period_start(grain, first_day).isoformat(), timezone=TIMEZONE
    )


def period_start(grain: Grain, day: date, week_start_index: int = 0) -> date:
    """First day of the period of `grain` that contains `day`."""
    return Calendar(week_start_index).period_start(grain, day)


def partition_key(grain: Grain, day: date, week_start_index: int = 0) -> str:
    """The partition key (its period's first day, YYYY-MM-DD) of the period containing `day`."""
    return period_start(grain, day, week_start_index).isoformat()


def keys_overlapping(
    grain: Grain, start: date, end: date, settings: OrchestrationSettings
) -> list[str]:
    """Keys of the periods overlapping the half-open window [start, end), in order.

    Periods are listed whether or not Dagster has them yet; `available_keys` filters.
    """
    if start >= end:
        raise ValueError(f"start {start} must be before end {end} (the window is half-open)")
    calendar = Calendar(settings.week_start_index)
    return [period.isoformat() for period in calendar.periods(grain, start, end)]


def available_keys(grain: Grain, settings: OrchestrationSettings) -> list[str]:
    """Every partition key Dagster has for the grain now (complete periods since the start)."""
    return list(partitions_def(grain, settings).get_partition_keys())


def window_of_keys(grain: Grain, first_key: str, last_key: str) -> tuple[date, date]:
    """The half-open date window [start, end) covered by partitions first_key..last_key."""
    first, last = date.fromisoformat(first_key), date.fromisoformat(last_key)
    if last < first:
        raise ValueError(f"partition range {first_key}..{last_key} is reversed")
    return first, period_after(grain, last)


def contiguous_ranges(grain: Grain, keys: Iterable[str]) -> list[tuple[str, str]]:
    """Sorted partition keys grouped into runs of consecutive periods: [(first, last), ...]."""
    ranges: list[tuple[str, str]] = []
    for key in sorted(set(keys)):
        following = period_after(grain, date.fromisoformat(ranges[-1][1])) if ranges else None
        if following is not None and following.isoformat() == key:
            ranges[-1] = (ranges[-1][0], key)
        else:
            ranges.append((key, key))
    return ranges
