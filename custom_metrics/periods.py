"""Whole-day periods and their buckets, on the project's one calendar (warehouse.calendar)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final

from custom_metrics.definitions import TimeGrain
from custom_metrics.errors import MetricValidationError
from warehouse.calendar import Calendar, CalendarError

MAX_BUCKETS: Final = 1000


def as_day(value: object, label: str) -> date:
    """A period bound as a UTC day; datetimes must be midnight UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            raise MetricValidationError(label, f"{value!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(value, datetime):
        try:
            utc = value if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:
            raise MetricValidationError(
                label, f"{value.isoformat()} is outside years 1..9999 in UTC; pick another day"
            ) from None
        if utc.time() != datetime.min.time():
            raise MetricValidationError(label, "must be a whole day (midnight UTC)")
        return utc.date()
    if not isinstance(value, date):
        raise MetricValidationError(
            label, f"must be a date or an ISO text such as '2025-01-01', not {type(value).__name__}"
        )
    return value


def whole_day_period(start: object, end: object) -> tuple[date, date]:
    """A half-open [start, end) of whole UTC days, start before end."""
    lo, hi = as_day(start, "start"), as_day(end, "end")
    if lo >= hi:
        raise MetricValidationError("start", "the period's start must be before its end")
    return lo, hi


def next_boundary(day: date, grain: TimeGrain, week_start_index: int) -> date | None:
    """The start of the next bucket; None when it would be after 9999-12-31."""
    try:
        return Calendar(week_start_index).next_start(grain, day)
    except CalendarError:
        return None


def starts_period(day: date, grain: TimeGrain, week_start_index: int) -> bool:
    """Whether `day` is the first day of its period (weeks start on `week_start_index`)."""
    return Calendar(week_start_index).period_start(grain, day) == day


def split_period(
    start: date, end: date, grain: TimeGrain | None, week_start_index: int = 0
) -> list[tuple[date, date]]:
    """[start, end) cut at grain boundaries (weeks start on `week_start_index`, 0 = Monday)."""
    if grain is None:
        return [(start, end)]
    buckets: list[tuple[date, date]] = []
    cursor = start
    while cursor < end:
        following = next_boundary(cursor, grain, week_start_index)
        boundary = end if following is None else min(following, end)
        buckets.append((cursor, boundary))
        if len(buckets) > MAX_BUCKETS:
            raise MetricValidationError(
                "period", f"more than {MAX_BUCKETS} {grain.value} buckets; pick a shorter period"
            )
        cursor = boundary
    return buckets
