"""Per-period answers: the periods of a `time_grain` over a range, each one's rolling window and
previous period, and the query shape that answers every period at once.

A period `[s, e)` of the grain is computed over the events of `[e - lookback_days, e)` when the
definition has a look-back, else over `[s, e)`. With `compare_to: previous_period` the range
must start and end on the grain's boundaries, so each period has a whole previous period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from custom_metrics.definitions import MetricDefinition, TimeGrain
from custom_metrics.errors import MetricValidationError
from custom_metrics.periods import split_period, starts_period
from warehouse.calendar import CalendarError, period_before

PERIOD_COLUMNS: Final = ("period_start", "period_end")
COMPARE_COLUMNS: Final = ("previous_value", "growth_pct")
# Columns of the periods relation inside the query (never output names).
P_START, P_END, P_LO, P_HI = "cm_period_start", "cm_period_end", "cm_lo", "cm_hi"
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class SeriesPeriod:
    """One period of the grain and the window of days its value is computed over."""

    start: date
    end: date
    window_start: date
    reported: bool = True


def _window_start(definition: MetricDefinition, start: date, end: date) -> date:
    if definition.lookback_days is None:
        return start
    try:
        return end - timedelta(days=definition.lookback_days)
    except OverflowError:
        raise MetricValidationError(
            "lookback_days",
            f"{definition.lookback_days} days before {end} is before year 1; "
            "pick a later end or a shorter look-back",
        ) from None


def _previous_start(start: date, grain: TimeGrain) -> date:
    """The start of the whole period just before the one starting at `start`."""
    try:
        return period_before(grain, start)
    except CalendarError:
        raise MetricValidationError(
            "start", f"the period before {start} is before year 1; pick a later start"
        ) from None


def _check_aligned(start: date, end: date, grain: TimeGrain, week_start_index: int) -> None:
    what = {
        TimeGrain.DAY: "a day",
        TimeGrain.WEEK: f"a {_WEEKDAYS[week_start_index]} (the configured week start)",
        TimeGrain.MONTH: "the first day of a month",
    }[grain]
    for label, day in (("start", start), ("end", end)):
        if not starts_period(day, grain, week_start_index):
            raise MetricValidationError(
                label,
                f"compare_to needs whole {grain.value}s: {day} is not {what}",
            )


def plan_series(
    definition: MetricDefinition, start: date, end: date, week_start_index: int
) -> list[SeriesPeriod]:
    """The reported periods of [start, end), plus (unreported, first) the period before the
    first one when the definition compares with the previous period."""
    grain = definition.time_grain
    if grain is None:
        raise AssertionError("a series needs a time_grain")
    periods = [
        SeriesPeriod(s, e, _window_start(definition, s, e))
        for s, e in split_period(start, end, grain, week_start_index)
    ]
    if definition.compare_to is None:
        return periods
    _check_aligned(start, end, grain, week_start_index)
    before = _previous_start(start, grain)
    previous = SeriesPeriod(before, start, _window_start(definition, before, start), False)
    return [previous, *periods]
