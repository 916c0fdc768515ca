"""The data sources a custom metric may read: tables, their columns and their time column.

This is the allowlist: a formula, filter, dimension or `where` may only name columns listed
here, and the compiler only ever references these tables (qualified with the configured schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class ColumnKind(StrEnum):
    """What a column holds, as far as validation cares."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    TIMESTAMP = "timestamp"
    JSON = "json"


@dataclass(frozen=True)
class DataSource:
    """One readable table: its name for users, the table behind it, columns and time column."""

    name: str
    table: str
    columns: MappingProxyType[str, ColumnKind]
    time_column: str
    json_column: str | None = None

    @property
    def time_kind(self) -> ColumnKind:
        return self.columns[self.time_column]


_T, _N, _D, _TS, _J = (
    ColumnKind.TEXT,
    ColumnKind.NUMBER,
    ColumnKind.DATE,
    ColumnKind.TIMESTAMP,
    ColumnKind.JSON,
)

_DIMS: Final = {"entity_type": _T, "entity_id": _T, "event_type": _T}
_MEASURES: Final = {"event_count": _N, "unique_actors": _N, "revenue_cents": _N}
_PERIOD_EXTRAS: Final = {
    "active_days": _N,
    "avg_daily_events": _N,
    "avg_daily_revenue_cents": _N,
    "prev_event_count": _N,
    "prev_unique_actors": _N,
    "prev_revenue_cents": _N,
    "event_count_growth_pct": _N,
    "unique_actors_growth_pct": _N,
    "revenue_growth_pct": _N,
}


def _source(
    name: str,
    table: str,
    columns: dict[str, ColumnKind],
    time_column: str,
    json_column: str | None = None,
) -> DataSource:
    return DataSource(name, table, MappingProxyType(dict(columns)), time_column, json_column)


SOURCES: Final[MappingProxyType[str, DataSource]] = MappingProxyType(
    {
        "events": _source(
            "events",
            "stg_events",
            {
                "event_id": _T,
                "occurred_at": _TS,
                "event_date": _D,
                "event_type": _T,
                "actor_id": _T,
                "entity_type": _T,
                "entity_id": _T,
                "revenue_cents": _N,
                "properties": _J,
                "ingested_at": _TS,
            },
            time_column="occurred_at",
            json_column="properties",
        ),
        "daily_metrics": _source(
            "daily_metrics",
            "daily_metrics",
            {"metric_date": _D, **_DIMS, **_MEASURES},
            time_column="metric_date",
        ),
        "weekly_metrics": _source(
            "weekly_metrics",
            "weekly_metrics",
            {"week_start": _D, **_DIMS, **_MEASURES, **_PERIOD_EXTRAS},
            time_column="week_start",
        ),
        "monthly_metrics": _source(
            "monthly_metrics",
            "monthly_metrics",
            {"month_start": _D, **_DIMS, **_MEASURES, "days_in_month": _N, **_PERIOD_EXTRAS},
            time_column="month_start",
        ),
    }
)


def get_source(name: str) -> DataSource:
    """The source called `name`; KeyError if it is not on the allowlist."""
    return SOURCES[name]
