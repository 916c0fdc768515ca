"""The marts declaration read from the dbt contracts."""

from __future__ import annotations

from warehouse.calendar import Grain
from warehouse.marts import DIMENSIONS, MEASURES, mart, marts, rollup_for


def test_every_rollup_is_declared_with_its_grain_and_period_column() -> None:
    tables = marts()
    assert {
        "daily_metrics",
        "weekly_metrics",
        "monthly_metrics",
        "monthly_weekly_breakdown",
    } <= set(tables)
    assert rollup_for(Grain.DAY).period_column == "metric_date"
    assert rollup_for(Grain.WEEK).period_column == "week_start"
    assert rollup_for(Grain.MONTH).period_column == "month_start"
    breakdown = mart("monthly_weekly_breakdown")
    assert breakdown.key == ("month_start", "week_start", *DIMENSIONS)
    for table in tables.values():
        assert set(DIMENSIONS) | set(MEASURES) <= set(table.column_names)
