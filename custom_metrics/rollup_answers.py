"""When a definition on the events can be answered exactly from a rollup, and how.

The rollups hold, per day / week / month and at six levels of (entity_type, entity_id,
event_type) with `*` for "all", the deduplicated event count, the exact distinct non-NULL
actors and the revenue. So, over whole days, with `filters` and `dimensions` only on those
three columns forming one of the levels and no `where`:

- COUNT of `*` is the sum of `event_count` (0 where there are no rows). One window is cut
  into whole months (`monthly_metrics`), whole weeks (`weekly_metrics`) and the days left
  (`daily_metrics`), whichever cut reads the fewest periods (`cover`); the periods of a
  series read one rollup: `monthly_metrics` when every window is whole months,
  `weekly_metrics` when whole weeks, else `daily_metrics`;
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
from datetime import date, timedelta
from typing import Final

from custom_metrics.definitions import MetricDefinition, MetricType
from custom_metrics.periods import starts_period
from warehouse.calendar import Calendar, CalendarError, Grain, period_after
from warehouse.marts import rollup_for

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


ROLLUP_TABLES: Final = {grain: rollup_for(grain).name for grain in Grain}


@dataclass(frozen=True)
class Piece:
    """The rows of one rollup whose period starts in [start, end): whole periods of its grain."""

    grain: Grain
    start: date
    end: date

    @property
    def table(self) -> str:
        return ROLLUP_TABLES[self.grain]

    @property
    def periods(self) -> int:
        """How many periods of the grain the piece reads."""
        if self.grain is Grain.MONTH:
            return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        return (self.end - self.start).days // (7 if self.grain is Grain.WEEK else 1)


@dataclass(frozen=True)
class RollupAnswer:
    """Which rollup answers the definition and with which measure; `pieces` when one window
    is read from several rollups (`source` then names them all, coarsest first)."""

    source: str
    measure: str
    zero_when_empty: bool
    pieces: tuple[Piece, ...] = ()


def _pieces(*candidates: Piece) -> list[Piece]:
    """The non-empty pieces, neighbours of one grain merged."""
    merged: list[Piece] = []
    for piece in candidates:
        if piece.start >= piece.end:
            continue
        if merged and merged[-1].grain is piece.grain and merged[-1].end == piece.start:
            piece = Piece(piece.grain, merged.pop().start, piece.end)
        merged.append(piece)
    return merged


def _days_and_weeks(lo: date, hi: date, week_start_index: int) -> list[Piece]:
    """[lo, hi) as the days before its first week start, whole weeks, and the days after."""
    try:
        first = Calendar(week_start_index).period_start(Grain.WEEK, lo)
        if first < lo:
            first += timedelta(days=7)
    except (CalendarError, OverflowError):
        return _pieces(Piece(Grain.DAY, lo, hi))
    if first >= hi:
        return _pieces(Piece(Grain.DAY, lo, hi))
    last = first + timedelta(days=7 * ((hi - first).days // 7))
    return _pieces(
        Piece(Grain.DAY, lo, first), Piece(Grain.WEEK, first, last), Piece(Grain.DAY, last, hi)
    )


def _month_starts(lo: date, hi: date) -> list[date]:
    """The first two and the last two month starts in [lo, hi] (fewer when there are fewer)."""
    calendar = Calendar()
    starts: list[date] = []
    try:
        day = lo if lo.day == 1 else calendar.next_start(Grain.MONTH, lo)
        while day <= hi and len(starts) < 2:
            starts.append(day)
            day = calendar.next_start(Grain.MONTH, day)
        day = hi.replace(day=1)
        for _ in range(2):
            if day >= lo:
                starts.append(day)
            day = calendar.previous_start(Grain.MONTH, day)
    except CalendarError:
        pass  # near year 1 or 9999: the month starts found so far
    return sorted(set(starts))


def cover(lo: date, hi: date, week_start_index: int) -> tuple[Piece, ...]:
    """The whole days [lo, hi) as whole months, whole weeks and days, reading the fewest
    periods: every period's rows hold at most the rows of the shorter periods inside it, so
    fewer periods read fewer rows. Months, when used, are one run between an edge of days and
    weeks on each side; the run starts at one of the first two month starts and ends at one
    of the last two (a week across a month's edge can beat the month plus its days)."""
    candidates = [_days_and_weeks(lo, hi, week_start_index)]
    starts = _month_starts(lo, hi)
    for first in starts[:2]:
        for last in starts[-2:]:
            if first < last:
                candidates.append(
                    _pieces(
                        *_days_and_weeks(lo, first, week_start_index),
                        Piece(Grain.MONTH, first, last),
                        *_days_and_weeks(last, hi, week_start_index),
                    )
                )
    # Fewest periods; on a tie the cut with the fewest pieces (one query branch each).
    best = min(reversed(candidates), key=lambda c: (sum(p.periods for p in c), len(c)))
    return tuple(best)


def _label(pieces: Sequence[Piece]) -> str:
    grains = [g for g in (Grain.MONTH, Grain.WEEK, Grain.DAY) if any(p.grain is g for p in pieces)]
    return "+".join(ROLLUP_TABLES[g] for g in grains)


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
        zero = measure == "event_count"
        if model.time_grain is None and len(windows) == 1:
            pieces = cover(*windows[0], week_start_index)
            if len(pieces) == 1:  # one rollup over one range: the plain single-table query
                return RollupAnswer(pieces[0].table, measure, zero)
            return RollupAnswer(_label(pieces), measure, zero, pieces)
        return RollupAnswer(_coarsest(windows, week_start_index), measure, zero)
    tables = {_one_whole(w, week_start_index) for w in windows}
    if len(tables) != 1 or None in tables:
        return None
    (table,) = tables
    assert table is not None
    return RollupAnswer(table, "unique_actors", True)
