"""When a definition on the events can be answered exactly from a rollup, and how.

The rollups hold, per day / week / month and at six levels of (entity_type, entity_id,
event_type) with `*` for "all", the deduplicated event count, the exact distinct non-NULL
actors and the revenue. So, over whole days, with `filters` and `dimensions` only on those
three columns forming one of the levels and no `where`:

- COUNT of `*` is the sum of `event_count` (0 where there are no rows), read from
  `monthly_metrics` when every window is whole months, `weekly_metrics` when whole weeks, else
  `daily_metrics`;
- SUM of `coalesce(revenue_cents, 0)` is the sum of `revenue_cents` likewise (NULL where there
  are no rows, as on the events; plain `revenue_cents` is not exact: the rollup stores 0 where
  every revenue was NULL, the events sum to NULL);
- DISTINCT_COUNT of `actor_id` is `unique_actors` of `weekly_metrics` / `monthly_metrics`
  when every window is exactly one whole week (from the configured week start) or one month,
  and filters are single values.

Anything else is answered from the events.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from custom_metrics.definitions import MetricDefinition, MetricType
from custom_metrics.periods import starts_period
from warehouse.calendar import Grain, period_after

ROLLUP_DIMENSIONS: Final = ("entity_type", "entity_id", "event_type")
ALL: Final = "*"
# The (entity_type, entity_id, event_type) combinations that have their own rows.
_LEVELS: Final = frozenset(
    frozenset(level)
    for level in (
        ROLLUP_DIMENSIONS,
        ("entity_type", "entity_id"),
        ("entity_type", "event_type"),
        ("entity_type",),
        ("event_type",),
        (),
    )
)
_FORMULAS: Final = {
    MetricType.COUNT: ("*", "count(*)"),
    MetricType.SUM: ("coalesce(revenue_cents,0)", "sum(coalesce(revenue_cents,0))"),
    MetricType.DISTINCT_COUNT: ("actor_id", "count(distinctactor_id)"),
}


@dataclass(frozen=True)
class RollupAnswer:
    """Which rollup answers the definition and with which measure."""

    source: str
    measure: str
    zero_when_empty: bool


def _formula_matches(model: MetricDefinition) -> bool:
    accepted = _FORMULAS.get(model.metric_type)
    if accepted is None or model.calculation_formula is None:
        return False
    # Spaces removed (the definition was validated already, so this is a plain comparison).
    return re.sub(r"\s+", "", model.calculation_formula.lower()) in accepted


def _filters_fit(model: MetricDefinition) -> bool:
    for name, value in model.filters.items():
        if name not in ROLLUP_DIMENSIONS:
            return False
        values = value if isinstance(value, list) else [value]
        if model.metric_type is MetricType.DISTINCT_COUNT and isinstance(value, list):
            return False
        if not all(isinstance(v, str) and v != ALL for v in values):
            return False
    return True


def _one_whole(window: tuple[date, date], week_start_index: int) -> str | None:
    """`weekly_metrics` or `monthly_metrics` when the window is exactly one such period."""
    lo, hi = window
    if starts_period(lo, Grain.WEEK, week_start_index) and hi == period_after(Grain.WEEK, lo):
        return "weekly_metrics"
    if starts_period(lo, Grain.MONTH, week_start_index) and hi == period_after(Grain.MONTH, lo):
        return "monthly_metrics"
    return None


def _month_start(day: date) -> bool:
    return starts_period(day, Grain.MONTH, 0)


def _coarsest(windows: Sequence[tuple[date, date]], week_start_index: int) -> str:
    """Additive measures sum over whole periods: months, else weeks, else days."""
    if all(_month_start(lo) and _month_start(hi) for lo, hi in windows):
        return "monthly_metrics"
    if all(
        starts_period(lo, Grain.WEEK, week_start_index) and (hi - lo).days % 7 == 0
        for lo, hi in windows
    ):
        return "weekly_metrics"
    return "daily_metrics"


def rollup_answer(
    model: MetricDefinition,
    windows: Sequence[tuple[date, date]] | None,
    week_start_index: int,
) -> RollupAnswer | None:
    """The rollup that gives exactly this definition's answer over these whole-day windows,
    or None when only the events can."""
    if (
        windows is None
        or not windows
        or model.data_source != "events"
        or model.where is not None
        or not _formula_matches(model)
        or not _filters_fit(model)
        or not set(model.dimensions) <= set(ROLLUP_DIMENSIONS)
        or frozenset({*model.filters, *model.dimensions}) not in _LEVELS
    ):
        return None
    if model.metric_type in (MetricType.COUNT, MetricType.SUM):
        measure = "event_count" if model.metric_type is MetricType.COUNT else "revenue_cents"
        return RollupAnswer(_coarsest(windows, week_start_index), measure, measure == "event_count")
    tables = {_one_whole(w, week_start_index) for w in windows}
    if len(tables) != 1 or None in tables:
        return None
    (table,) = tables
    assert table is not None
    return RollupAnswer(table, "unique_actors", True)
