"""Materialization metadata a person wants to see: the run's window, rows written, top movers.

Read from the warehouse after dbt has finished (never while it holds DuckDB).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from orchestration.partitions import Grain
from warehouse import Warehouse
from warehouse.calendar import growth_pct, period_before
from warehouse.marts import rollup_for

MOVERS_LIMIT = 5
MOVERS_MIN_PREVIOUS_EVENTS = 5


@dataclass(frozen=True)
class Mover:
    """One entity's events in a period against the period before."""

    entity_type: str
    entity_id: str
    previous: int
    current: int

    @property
    def growth_pct(self) -> Decimal:
        """Growth as the rollups store it (half away from zero: 33 vs 32 is +3.13%); movers
        always have previous events, so it is never undefined here."""
        return growth_pct(self.current, self.previous) or Decimal(0)


def count_rows_matching(wh: Warehouse, table: str, predicates: list[str]) -> int:
    """Rows of `table` matching dbt's incremental_predicates for the run (SQL that dbt rendered
    from the run's window: the rows the run replaced)."""
    condition = " and ".join(f"({predicate})" for predicate in predicates)
    rows = wh.query(f"select count(*) from {wh.schema}.{table} where {condition}")
    return int(rows[0][0])


def latest_period_with_rows(wh: Warehouse, grain: Grain, start: date, end: date) -> date | None:
    """The latest period in [start, end) that has rows in the grain's rollup."""
    rollup = rollup_for(grain)
    table, column = rollup.name, rollup.period_column
    p = wh.param
    rows = wh.query(
        f"select max({column}) from {wh.schema}.{table} "
        f"where {column} >= {p('s')} and {column} < {p('e')}",
        {"s": start, "e": end},
    )
    value = rows[0][0] if rows else None
    return value if isinstance(value, date) else None


def _movers_query(wh: Warehouse, grain: Grain) -> str:
    p = wh.param
    if grain is Grain.DAY:
        return (
            f"select cur.entity_type, cur.entity_id, prev.event_count, cur.event_count "
            f"from {wh.schema}.daily_metrics as cur join {wh.schema}.daily_metrics as prev "
            f"on prev.metric_date = {p('previous')} and prev.entity_type = cur.entity_type "
            f"and prev.entity_id = cur.entity_id and prev.event_type = cur.event_type "
            f"where cur.metric_date = {p('period')} and cur.event_type = '*' "
            f"and cur.entity_id <> '*' and prev.event_count >= {p('min_previous')}"
        )
    rollup = rollup_for(grain)
    table, column = rollup.name, rollup.period_column
    return (
        f"select entity_type, entity_id, prev_event_count, event_count from {wh.schema}.{table} "
        f"where {column} = {p('period')} and event_type = '*' and entity_id <> '*' "
        f"and prev_event_count >= {p('min_previous')}"
    )


def top_movers(wh: Warehouse, grain: Grain, period: date) -> list[Mover]:
    """Entities whose event count moved most (either way) against the previous period."""
    params: dict[str, object] = {"period": period, "min_previous": MOVERS_MIN_PREVIOUS_EVENTS}
    if grain is Grain.DAY:
        params["previous"] = period_before(grain, period)
    rows = wh.query(_movers_query(wh, grain), params)
    movers = [Mover(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
    movers.sort(key=lambda m: (-abs(m.growth_pct), m.entity_type, m.entity_id))
    return movers[:MOVERS_LIMIT]


def movers_markdown(grain: Grain, period: date, movers: list[Mover]) -> str:
    """A small markdown table of the movers, for `MetadataValue.md`."""
    title = (
        f"**Top growth movers, {grain.value} of {period.isoformat()}** (event count vs the "
        f"previous {grain.value}; entities with at least {MOVERS_MIN_PREVIOUS_EVENTS} events "
        "before)"
    )
    if not movers:
        return f"{title}\n\nNo entity qualifies for this {grain.value}."
    lines = [title, "", "| entity | previous | current | growth |", "|---|---:|---:|---:|"]
    for mover in movers:
        lines.append(
            f"| {mover.entity_type} / {mover.entity_id} | {mover.previous:,} | {mover.current:,} "
            f"| {mover.growth_pct:+.2f}% |"
        )
    return "\n".join(lines)
