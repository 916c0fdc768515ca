"""Rollup-aware answers: a definition whose answer a rollup holds exactly is read from
daily_metrics / weekly_metrics / monthly_metrics with the same values as from the events (and
as plain Python); anything else is read from the events; test runs and the audit say which."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from custom_metrics import CustomMetricService, Principal, compile_metric
from tests.custom_metrics.support import (
    aggregate,
    answer_of,
    assert_same,
    both_paths,
    grain_periods,
    window_reference,
)
from warehouse import Warehouse

OWNER = Principal("rollups", "analytics", "acme")
JAN6, FEB3 = date(2025, 1, 6), date(2025, 2, 3)


def d(metric_type: str, formula: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{metric_type} {formula}",
        "metric_type": metric_type,
        "data_source": "events",
        "calculation_formula": formula,
        **extra,
    }


def _count(rows: list[dict[str, Any]]) -> int:
    return len(rows)


def _revenue(rows: list[dict[str, Any]]) -> Any:
    return aggregate("sum", [r["revenue_cents"] or 0 for r in rows]) if rows else None


def _actors(rows: list[dict[str, Any]]) -> Any:
    return aggregate("distinct", [r["actor_id"] for r in rows])


def _matches(filters: dict[str, Any]) -> Any:
    def keep(row: dict[str, Any]) -> bool:
        for name, value in filters.items():
            wanted = value if isinstance(value, list) else [value]
            if row[name] not in wanted:
                return False
        return True

    return keep


# (id, definition, start, end, the rollup expected, value in Python)
ROLLUP_CASES = [
    (
        "count-all",
        d("COUNT", "*"),
        date(2025, 1, 3),
        date(2025, 2, 17),
        "weekly_metrics+daily_metrics",  # 3 days, then 6 whole weeks
        _count,
    ),
    (
        "count-level-type-id-event",
        d(
            "COUNT",
            "count(*)",
            filters={"entity_type": "asset", "event_type": "click"},
            dimensions=["entity_id"],
        ),
        date(2025, 1, 1),
        date(2025, 3, 1),
        "monthly_metrics",  # whole months: the coarsest rollup that covers them exactly
        _count,
    ),
    (
        "count-whole-weeks",
        d("COUNT", "*", filters={"event_type": "purchase"}, dimensions=["entity_type"]),
        JAN6,
        FEB3,
        "weekly_metrics",
        _count,
    ),
    (
        "count-by-event-type",
        d("COUNT", "*", dimensions=["event_type"]),
        date(2025, 1, 10),
        date(2025, 1, 24),
        "weekly_metrics+daily_metrics",
        _count,
    ),
    (
        "count-list-filter",
        d("COUNT", "*", filters={"event_type": ["click", "purchase"]}, dimensions=["entity_type"]),
        date(2025, 2, 1),
        date(2025, 2, 20),
        "weekly_metrics+daily_metrics",
        _count,
    ),
    (
        "count-days-weeks-month",
        d("COUNT", "*", filters={"entity_type": "asset"}, dimensions=["event_type"]),
        date(2025, 1, 2),
        date(2025, 4, 2),  # Jan 2-5, weeks Jan 6-27, Jan 27-31, February, March, Apr 1
        "monthly_metrics+weekly_metrics+daily_metrics",
        _count,
    ),
    (
        "count-a-few-days",
        d("COUNT", "*", filters={"event_type": "click"}),
        date(2025, 1, 8),
        date(2025, 1, 12),
        "daily_metrics",
        _count,
    ),
    (
        "revenue-mid-month-to-mid-month",
        d("SUM", "coalesce(revenue_cents, 0)", filters={"entity_type": ["asset", "org"]}),
        date(2025, 1, 29),
        date(2025, 3, 3),  # Jan 29-31, February, Mar 1-2
        "monthly_metrics+daily_metrics",
        _revenue,
    ),
    (
        "revenue-by-type",
        d("SUM", "coalesce(revenue_cents, 0)", dimensions=["entity_type"]),
        date(2025, 1, 1),
        date(2025, 2, 1),
        "monthly_metrics",
        _revenue,
    ),
    (
        "revenue-empty-period",
        d("SUM", "sum(coalesce(revenue_cents, 0))"),
        date(2025, 6, 1),
        date(2025, 6, 2),
        "daily_metrics",
        _revenue,
    ),
    (
        "wau-one-week",
        d("DISTINCT_COUNT", "actor_id"),
        JAN6,
        date(2025, 1, 13),
        "weekly_metrics",
        _actors,
    ),
    (
        "mau-one-month-by-event",
        d("DISTINCT_COUNT", "count(distinct actor_id)", dimensions=["event_type"]),
        date(2025, 2, 1),
        date(2025, 3, 1),
        "monthly_metrics",
        _actors,
    ),
    (
        "wau-filtered",
        d("DISTINCT_COUNT", "actor_id", filters={"entity_type": "license"}),
        date(2025, 1, 13),
        date(2025, 1, 20),
        "weekly_metrics",
        _actors,
    ),
]

EVENTS_CASES = [
    ("where", d("COUNT", "*", where="revenue_cents > 0"), date(2025, 1, 1), date(2025, 2, 1)),
    ("json-filter", d("COUNT", "*", filters={"properties.tier": "gold"}), JAN6, FEB3),
    ("count-column", d("COUNT", "actor_id"), JAN6, FEB3),
    ("plain-revenue-sum", d("SUM", "revenue_cents"), JAN6, FEB3),
    ("entity-id-without-type", d("COUNT", "*", dimensions=["entity_id"]), JAN6, FEB3),
    ("distinct-ten-days", d("DISTINCT_COUNT", "actor_id"), JAN6, date(2025, 1, 16)),
    ("distinct-two-weeks", d("DISTINCT_COUNT", "actor_id"), JAN6, date(2025, 1, 20)),
    (
        "distinct-list-filter",
        d("DISTINCT_COUNT", "actor_id", filters={"event_type": ["click", "purchase"]}),
        JAN6,
        date(2025, 1, 13),
    ),
    ("star-filter", d("COUNT", "*", filters={"event_type": "*"}), JAN6, FEB3),
    ("null-filter", d("COUNT", "*", filters={"entity_type": None}), JAN6, FEB3),
    (
        "part-day",
        d("COUNT", "*"),
        datetime(2025, 1, 6, 12, tzinfo=UTC),
        datetime(2025, 1, 9, tzinfo=UTC),
    ),
    ("count-distinct-entity", d("DISTINCT_COUNT", "entity_id"), JAN6, date(2025, 1, 13)),
]


@pytest.mark.parametrize(
    ("definition", "start", "end", "rollup", "value"),
    [c[1:] for c in ROLLUP_CASES],
    ids=[c[0] for c in ROLLUP_CASES],
)
def test_rollup_answer_equals_the_events_and_python(
    wh: Warehouse,
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    start: date,
    end: date,
    rollup: str,
    value: Any,
) -> None:
    fast, slow = both_paths(wh, definition, start, end)
    assert (fast.answered_from, slow.answered_from) == (rollup, "events")
    assert all(table in fast.sql for table in rollup.split("+")) and "stg_events" not in fast.sql
    from_rollup = answer_of(wh, fast)
    from_events = answer_of(wh, slow)
    keep = _matches(definition.get("filters", {}))
    dims = definition.get("dimensions", [])
    expected = window_reference(events, dims, keep, value, (start, end))
    assert_same(from_events, expected)
    assert_same(from_rollup, expected)
    assert from_rollup == from_events  # equal values, not only close


@pytest.mark.parametrize(
    ("definition", "start", "end"), [c[1:] for c in EVENTS_CASES], ids=[c[0] for c in EVENTS_CASES]
)
def test_anything_else_is_read_from_the_events(
    definition: dict[str, Any], start: Any, end: Any
) -> None:
    for dialect in ("postgres", "duckdb", "spark"):
        compiled = compile_metric(definition, dialect, start, end, week_start_index=0)
        assert compiled.answered_from == "events", compiled.sql
        assert "stg_events" in compiled.sql


SERIES_CASES = [
    ("daily-count-7d", d("COUNT", "*", time_grain="day", lookback_days=7), JAN6, FEB3, "daily"),
    (
        "weekly-wau-growth",
        d("DISTINCT_COUNT", "actor_id", time_grain="week", compare_to="previous_period"),
        JAN6,
        date(2025, 3, 3),
        "weekly",
    ),
    (
        "monthly-mau-by-type",
        d("DISTINCT_COUNT", "actor_id", time_grain="month", dimensions=["event_type"]),
        date(2025, 1, 1),
        date(2025, 3, 1),
        "monthly",
    ),
    (
        "daily-revenue-by-event",
        d("SUM", "coalesce(revenue_cents, 0)", time_grain="day", dimensions=["event_type"]),
        date(2025, 2, 20),
        date(2025, 3, 3),
        "daily",
    ),
]


@pytest.mark.parametrize(
    ("definition", "start", "end", "rollup"),
    [c[1:] for c in SERIES_CASES],
    ids=[c[0] for c in SERIES_CASES],
)
def test_series_from_rollups_equal_the_events(
    wh: Warehouse, definition: dict[str, Any], start: date, end: date, rollup: str
) -> None:
    fast, slow = both_paths(wh, definition, start, end)
    assert fast.answered_from == f"{rollup}_metrics" and slow.answered_from == "events"
    fast_rows = [tuple(r) for r in wh.query(fast.sql, fast.params)]
    assert fast_rows == [tuple(r) for r in wh.query(slow.sql, slow.params)]
    assert len(fast_rows) >= len(grain_periods(start, end, definition["time_grain"]))


def test_test_run_and_audit_say_which_source(wh: Warehouse) -> None:
    service = CustomMetricService(wh, OWNER)
    counted = d("COUNT", "*", dimensions=["event_type"], time_grain="week")
    run = service.test_metric_definition(counted, JAN6, FEB3)
    assert run.answered_from == "weekly_metrics"  # whole weeks
    stored = service.create_definition(counted)
    result = service.calculate_metric(stored.definition_id, JAN6, FEB3)
    assert result.answered_from == "weekly_metrics"
    other = service.create_definition({**counted, "where": "actor_id is not null"})
    assert service.calculate_metric(other.definition_id, JAN6, FEB3).answered_from == "events"
    audits = service.calculations(stored.definition_id) + service.calculations(other.definition_id)
    assert [a.answered_from for a in audits] == ["weekly_metrics", "events"]
    days = service.test_metric_definition(counted, date(2025, 1, 8), FEB3)
    assert days.answered_from == "daily_metrics"  # a partial first week: read by day
