"""Typed rows the reader returns: one rollup row of a level and event type, and the latest
complete period with its growth."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from typing import Any, Final

from warehouse.calendar import Grain
from warehouse.marts import DIMENSIONS, rollup_for

_INTEGERS: Final = frozenset(
    {
        "event_count",
        "unique_actors",
        "revenue_cents",
        "active_days",
        "days_in_month",
        "prev_event_count",
        "prev_unique_actors",
        "prev_revenue_cents",
    }
)


def row_columns(grain: Grain) -> tuple[str, ...]:
    """The columns of the grain's rollup a row carries, the period column first, as the dbt
    contract lists them (warehouse.marts), without the entity dimensions."""
    mart = rollup_for(grain)
    rest = [c for c in mart.column_names if c not in DIMENSIONS and c != mart.period_column]
    return (mart.period_column, *rest)


@dataclass(frozen=True)
class MetricsRow:
    """One stored rollup row: the period, its measures, and for weeks and months the daily
    averages, the previous period's measures and the growth (None where the grain has none,
    or the previous period had no events)."""

    grain: Grain
    period_start: date
    event_count: int
    unique_actors: int
    revenue_cents: int
    active_days: int | None = None
    days_in_month: int | None = None
    avg_daily_events: Decimal | None = None
    avg_daily_revenue_cents: Decimal | None = None
    prev_event_count: int | None = None
    prev_unique_actors: int | None = None
    prev_revenue_cents: int | None = None
    event_count_growth_pct: Decimal | None = None
    unique_actors_growth_pct: Decimal | None = None
    revenue_growth_pct: Decimal | None = None

    @classmethod
    def from_record(cls, grain: Grain, record: Mapping[str, Any]) -> MetricsRow:
        """A row from a query record (``period_start`` and the rollup's columns), typed: counts
        as int, averages and growth as Decimal."""
        known = {f.name for f in fields(cls)} - {"grain"}
        values: dict[str, Any] = {}
        for name, value in record.items():
            if name not in known or value is None:
                continue
            if name in _INTEGERS:
                values[name] = int(value)
            elif name == "period_start":
                values[name] = value
            else:
                values[name] = value if isinstance(value, Decimal) else Decimal(str(value))
        return cls(grain=grain, **values)

    def as_dict(self) -> dict[str, Any]:
        """The row's own columns (those its grain has), as a plain dict."""
        names = ("period_start", *row_columns(self.grain)[1:])
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class LatestPeriod(MetricsRow):
    """The last complete period of a level: its row, where it ends, and (for days, computed as
    the rollups do) the previous day's measures and the growth."""

    period_end: date = field(kw_only=True)
