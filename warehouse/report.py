"""The short report `make demo` prints: row counts, and the latest complete week and month."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from warehouse.connection import Warehouse

OUTPUT_TABLES = (
    "stg_events",
    "daily_metrics",
    "weekly_metrics",
    "monthly_metrics",
    "monthly_weekly_breakdown",
)


def _fmt_pct(value: Any) -> str:
    return "   n/a" if value is None else f"{float(value):+7.2f}%"


def _period_table(wh: Warehouse, table: str, column: str, period: date) -> list[str]:
    rows = wh.query(
        f"select event_type, event_count, unique_actors, revenue_cents, "
        f"event_count_growth_pct, unique_actors_growth_pct, revenue_growth_pct "
        f"from {wh.schema}.{table} "
        f"where entity_type = '*' and entity_id = '*' and {column} = {wh.param('p')} "
        f"order by case when event_type = '*' then 1 else 0 end, event_count desc",
        {"p": period},
    )
    lines = [
        f"    {'event type':<18}{'events':>10}{'actors':>9}{'revenue':>14}"
        f"{'events':>10}{'actors':>10}{'revenue':>10}",
    ]
    for event_type, events, actors, revenue, g_events, g_actors, g_revenue in rows:
        label = "all events" if event_type == "*" else event_type
        lines.append(
            f"    {label:<18}{events:>10,}{actors:>9,}{revenue / 100:>14,.2f}"
            f"{_fmt_pct(g_events):>10}{_fmt_pct(g_actors):>10}{_fmt_pct(g_revenue):>10}"
        )
    return lines


def build_report(wh: Warehouse) -> str:
    """Row counts of every output table and the latest complete week and month, with growth."""
    lines = [f"Warehouse: {wh.dialect}, schema {wh.schema}", "", "  rows per table:"]
    for table in OUTPUT_TABLES:
        if wh.table_exists(wh.schema, table):
            count = wh.query(f"select count(*) from {wh.schema}.{table}")[0][0]
            lines.append(f"    {table:<28}{count:>12,}")
        else:
            lines.append(f"    {table:<28}{'(not built)':>12}")
    if not wh.table_exists(wh.schema, "daily_metrics"):
        return "\n".join(lines)
    last_day = wh.query(f"select max(metric_date) from {wh.schema}.daily_metrics")[0][0]
    if last_day is None:
        lines.append("  (no events yet)")
        return "\n".join(lines)
    weeks = wh.query(
        f"select max(week_start) from {wh.schema}.weekly_metrics "
        f"where week_start <= {wh.param('d')}",
        {"d": last_day - timedelta(days=6)},
    )
    months = wh.query(
        f"select max(month_start) from {wh.schema}.monthly_metrics "
        f"where month_start < {wh.param('d')}",
        {"d": (last_day + timedelta(days=1)).replace(day=1)},
    )
    header = "growth vs previous:"
    if weeks[0][0] is not None:
        week = weeks[0][0]
        lines += ["", f"  latest complete week {week} .. {week + timedelta(days=6)} ({header})"]
        lines += _period_table(wh, "weekly_metrics", "week_start", week)
    if months[0][0] is not None:
        month = months[0][0]
        lines += ["", f"  latest complete month {month:%Y-%m} ({header})"]
        lines += _period_table(wh, "monthly_metrics", "month_start", month)
    return "\n".join(lines)
