"""The one calendar and the one growth rule every Python part of the project uses.

A grain is a day, a week or a month. Days are UTC days; a week starts on the configured weekday
(METRICS_WEEK_START, the same setting the SQL and the Dagster partitions read); a month starts
on its first day. Growth and averages round exactly as the dbt models do: half away from zero,
computed with integers so no float can misround a tie (33 vs 32 events is +3.13%).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CalendarError(ValueError):
    """A period that the calendar cannot represent (before year 1 or after year 9999), or a
    grain or weekday it does not know; the message says which and why."""


class Grain(StrEnum):
    """A period length. The value is the noun (`day`); `adjective` names rollups (`daily`)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def adjective(self) -> str:
        """`daily`, `weekly` or `monthly`: the rollup tables, jobs and dbt tags of the grain."""
        return {"day": "daily", "week": "weekly", "month": "monthly"}[self.value]

    @classmethod
    def parse(cls, text: str) -> Grain:
        """A grain from `day`/`daily`, `week`/`weekly` or `month`/`monthly` (any case)."""
        name = str(text).strip().lower()
        for grain in cls:
            if name in (grain.value, grain.adjective):
                return grain
        raise CalendarError(
            f"unknown grain {text!r}: use day (daily), week (weekly) or month (monthly)"
        )


def week_start_index(name: str) -> int:
    """0 for Monday ... 6 for Sunday, from a weekday name (as `date.weekday()` counts)."""
    key = str(name).strip().lower()
    if key not in WEEKDAYS:
        raise CalendarError(f"a week starts on a weekday name (monday ... sunday), not {name!r}")
    return WEEKDAYS.index(key)


def _shift_days(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        direction = "after" if days > 0 else "before"
        raise CalendarError(
            f"no day {abs(days)} day(s) {direction} {day.isoformat()}: dates run from "
            "0001-01-01 to 9999-12-31"
        ) from None


def _shift_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise CalendarError(
            f"no month {abs(months)} month(s) {'after' if months > 0 else 'before'} "
            f"{first:%Y-%m}: dates run from 0001-01 to 9999-12"
        )
    return date(year, month + 1, 1)


@dataclass(frozen=True)
class Calendar:
    """Period arithmetic for one week start (0 = Monday ... 6 = Sunday)."""

    week_start_index: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.week_start_index, int) or not 0 <= self.week_start_index <= 6:
            raise CalendarError(f"week_start_index must be 0..6, got {self.week_start_index!r}")

    @classmethod
    def named(cls, week_start: str) -> Calendar:
        """The calendar whose weeks start on `week_start` (`monday` ... `sunday`)."""
        return cls(week_start_index(week_start))

    @property
    def week_start(self) -> str:
        """The weekday name weeks start on."""
        return WEEKDAYS[self.week_start_index]

    def period_start(self, grain: Grain, day: date) -> date:
        """First day of the period of `grain` that contains `day`."""
        if grain is Grain.DAY:
            return day
        if grain is Grain.WEEK:
            return _shift_days(day, -((day.weekday() - self.week_start_index) % 7))
        return day.replace(day=1)

    def next_start(self, grain: Grain, start: date) -> date:
        """First day of the period after the one containing `start`."""
        first = self.period_start(grain, start)
        if grain is Grain.DAY:
            return _shift_days(first, 1)
        if grain is Grain.WEEK:
            return _shift_days(first, 7)
        return _shift_months(first, 1)

    def previous_start(self, grain: Grain, start: date) -> date:
        """First day of the period before the one containing `start`."""
        first = self.period_start(grain, start)
        if grain is Grain.MONTH:
            return _shift_months(first, -1)
        return _shift_days(first, -1 if grain is Grain.DAY else -7)

    def shift(self, grain: Grain, start: date, periods: int) -> date:
        """First day of the period `periods` after (negative: before) the one containing
        `start`."""
        first = self.period_start(grain, start)
        if grain is Grain.MONTH:
            return _shift_months(first, periods)
        return _shift_days(first, periods * (1 if grain is Grain.DAY else 7))

    def period_end(self, grain: Grain, start: date) -> date:
        """The exclusive end of the period containing `start` (the next period's start)."""
        return self.next_start(grain, start)

    def days_in(self, grain: Grain, start: date) -> int:
        """How many days the period containing `start` has."""
        first = self.period_start(grain, start)
        return (self.period_end(grain, first) - first).days

    def periods(self, grain: Grain, start: date, end: date) -> Iterator[date]:
        """Starts of the periods overlapping the half-open window [start, end), in order."""
        if start >= end:
            raise CalendarError(
                f"the window [{start}, {end}) is empty: its start must be before its end"
            )
        current = self.period_start(grain, start)
        while current < end:
            yield current
            try:
                current = self.next_start(grain, current)
            except CalendarError:  # the last period of 9999: nothing follows it
                return


def period_after(grain: Grain, start: date) -> date:
    """First day of the period after the one starting on `start`, whatever the week start
    (`start` is a period start, so the calendar whose weeks start on its weekday holds it)."""
    return Calendar(start.weekday()).next_start(grain, start)


def period_before(grain: Grain, start: date) -> date:
    """First day of the period before the one starting on `start`, whatever the week start."""
    return Calendar(start.weekday()).previous_start(grain, start)


def rounded_ratio(numerator: int, denominator: int, scale: int) -> Decimal | None:
    """numerator / denominator rounded half away from zero to `scale` decimals, exactly
    (integer arithmetic, as the SQL macro does); None when the denominator is 0."""
    if denominator == 0:
        return None
    factor = 10**scale
    sign = 1 if (numerator < 0) == (denominator < 0) else -1
    magnitude = (2 * abs(numerator) * factor + abs(denominator)) // (2 * abs(denominator))
    return Decimal(sign * magnitude).scaleb(-scale)


def growth_pct(current: int | None, previous: int | None) -> Decimal | None:
    """round(100 * (current - previous) / previous, 2), half away from zero; None where
    either value is missing or previous is 0. The same figure the rollups store."""
    if current is None or previous is None or previous == 0:
        return None
    return rounded_ratio(100 * (int(current) - int(previous)), int(previous), 2)


def daily_average(measure: int, days: int) -> Decimal | None:
    """A measure spread over `days`, rounded half away from zero to 6 decimals (the rollups'
    `avg_daily_*`)."""
    return rounded_ratio(int(measure), int(days), 6)
