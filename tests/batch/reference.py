"""The rollups computed in plain Python from the same events: the independent truth for tests.

Nothing here shares code with the SQL: deduplication, levels, periods, distinct actors,
averages and growth are each written out directly from the table definitions (docs/reference.md).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from decimal import Decimal
from fractions import Fraction

from metrics_events import Event

Dims = tuple[str, str, str]
ALL = "*"


def deduplicate(events: Iterable[Event]) -> list[Event]:
    """One delivery per event_id: the earliest ingestion wins."""
    best: dict[str, Event] = {}
    for event in events:
        kept = best.get(event.event_id)
        if kept is None or (event.ingested_at, event.occurred_at) < (
            kept.ingested_at,
            kept.occurred_at,
        ):
            best[event.event_id] = event
    return list(best.values())


def levels(event: Event) -> list[Dims]:
    """The six rollup levels an event counts in, '*' meaning all."""
    et, eid, evt = event.entity_type, event.entity_id, event.event_type
    return [
        (et, eid, evt),
        (et, eid, ALL),
        (et, ALL, evt),
        (et, ALL, ALL),
        (ALL, ALL, evt),
        (ALL, ALL, ALL),
    ]


def utc_day(event: Event) -> date:
    return event.occurred_at.astimezone(UTC).date()


def week_start(day: date, week_start_index: int = 0) -> date:
    return day - timedelta(days=(day.weekday() - week_start_index) % 7)


def month_start(day: date) -> date:
    return day.replace(day=1)


def previous_month(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def rounded(numerator: int, denominator: int, scale: int) -> Decimal:
    """numerator / denominator rounded half away from zero, exactly."""
    value = Fraction(numerator, denominator) * 10**scale
    magnitude = int(abs(value) + Fraction(1, 2))
    signed = magnitude if value >= 0 else -magnitude
    return Decimal(signed).scaleb(-scale).quantize(Decimal(1).scaleb(-scale))


def growth(current: int, previous: int | None) -> Decimal | None:
    if previous is None or previous == 0:
        return None
    return rounded(100 * (current - previous), previous, 2)


@dataclass
class _Cell:
    count: int = 0
    actors: set[str] = field(default_factory=set)
    revenue: int = 0
    days: set[date] = field(default_factory=set)


def _aggregate(
    events: list[Event], period_of: Callable[[date], tuple[date, ...]]
) -> dict[tuple[date, ...], dict[Dims, _Cell]]:
    cells: dict[tuple[date, ...], dict[Dims, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    for event in events:
        day = utc_day(event)
        period = period_of(day)
        for dims in levels(event):
            cell = cells[period][dims]
            cell.count += 1
            if event.actor_id is not None:
                cell.actors.add(event.actor_id)
            cell.revenue += event.revenue_cents or 0
            cell.days.add(day)
    return cells


Row = dict[str, object]


def daily_metrics(events: list[Event]) -> dict[tuple[object, ...], Row]:
    out: dict[tuple[object, ...], Row] = {}
    for (day,), by_dims in _aggregate(events, lambda d: (d,)).items():
        for dims, cell in by_dims.items():
            out[(day, *dims)] = {
                "event_count": cell.count,
                "unique_actors": len(cell.actors),
                "revenue_cents": cell.revenue,
            }
    return out


def _with_growth(
    cells: dict[tuple[date, ...], dict[Dims, _Cell]],
    previous_of: Callable[[date], date],
    days_of: Callable[[date], int],
    monthly: bool,
) -> dict[tuple[object, ...], Row]:
    out: dict[tuple[object, ...], Row] = {}
    for (period,), by_dims in cells.items():
        before = cells.get((previous_of(period),), {})
        days = days_of(period)
        for dims, cell in by_dims.items():
            prev = before.get(dims)
            prev_count = prev.count if prev else None
            prev_actors = len(prev.actors) if prev else None
            prev_revenue = prev.revenue if prev else None
            row: Row = {
                "event_count": cell.count,
                "unique_actors": len(cell.actors),
                "revenue_cents": cell.revenue,
                "active_days": len(cell.days),
                "avg_daily_events": rounded(cell.count, days, 6),
                "avg_daily_revenue_cents": rounded(cell.revenue, days, 6),
                "prev_event_count": prev_count,
                "prev_unique_actors": prev_actors,
                "prev_revenue_cents": prev_revenue,
                "event_count_growth_pct": growth(cell.count, prev_count),
                "unique_actors_growth_pct": growth(len(cell.actors), prev_actors),
                "revenue_growth_pct": growth(cell.revenue, prev_revenue),
            }
            if monthly:
                row["days_in_month"] = days
            out[(period, *dims)] = row
    return out


def weekly_metrics(events: list[Event], week_start_index: int = 0) -> dict[tuple[object, ...], Row]:
    cells = _aggregate(events, lambda d: (week_start(d, week_start_index),))
    return _with_growth(cells, lambda p: p - timedelta(days=7), lambda p: 7, monthly=False)


def monthly_metrics(events: list[Event]) -> dict[tuple[object, ...], Row]:
    cells = _aggregate(events, lambda d: (month_start(d),))
    return _with_growth(
        cells, previous_month, lambda p: calendar.monthrange(p.year, p.month)[1], monthly=True
    )


def monthly_weekly_breakdown(
    events: list[Event], week_start_index: int = 0
) -> dict[tuple[object, ...], Row]:
    out: dict[tuple[object, ...], Row] = {}
    cells = _aggregate(events, lambda d: (month_start(d), week_start(d, week_start_index)))
    for (month, week), by_dims in cells.items():
        for dims, cell in by_dims.items():
            out[(month, week, *dims)] = {
                "event_count": cell.count,
                "unique_actors": len(cell.actors),
                "revenue_cents": cell.revenue,
            }
    return out


def all_tables(
    events: Iterable[Event], week_start_index: int = 0
) -> dict[str, dict[tuple[object, ...], Row]]:
    """Every output table (docs/reference.md), keyed by its grain."""
    unique = deduplicate(events)
    return {
        "daily_metrics": daily_metrics(unique),
        "weekly_metrics": weekly_metrics(unique, week_start_index),
        "monthly_metrics": monthly_metrics(unique),
        "monthly_weekly_breakdown": monthly_weekly_breakdown(unique, week_start_index),
    }


GRAINS: dict[str, tuple[str, ...]] = {
    "daily_metrics": ("metric_date", "entity_type", "entity_id", "event_type"),
    "weekly_metrics": ("week_start", "entity_type", "entity_id", "event_type"),
    "monthly_metrics": ("month_start", "entity_type", "entity_id", "event_type"),
    "monthly_weekly_breakdown": (
        "month_start",
        "week_start",
        "entity_type",
        "entity_id",
        "event_type",
    ),
}
