"""`compare_to: previous_period`: per period the value, the previous period's value and the growth
(rounded half away from zero, NULL when the previous value is NULL or 0) on every path, against
plain Python with decimal arithmetic; half-way cases on hand-made events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import CustomMetricService, MetricValidationError, Principal, compile_metric
from tests.custom_metrics.support import (
    aggregate,
    connection_params,
    event,
    grain_periods,
    own_warehouse,
    same_number,
    series_reference,
    service_paths,
)
from tests.targets import EVERY_WAREHOUSE, on_every_warehouse
from warehouse import Warehouse

OWNER = Principal("compare", "analytics", "acme")


def growth(current: Any, previous: Any) -> Decimal | None:
    """The rollups' rule, written independently with decimals (ROUND_HALF_UP is away from 0)."""
    if current is None or previous is None or previous == 0:
        return None
    change = (
        Decimal(100) * (Decimal(str(current)) - Decimal(str(previous))) / Decimal(str(previous))
    )
    return change.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def expected_rows(
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    keep: Any,
    value: Any,
    start: date,
    end: date,
    before: date,
) -> dict[tuple[Any, ...], tuple[Any, Any, Any]]:
    """(period_start, period_end, *dims) -> (previous_value, growth_pct, value)."""
    dims = list(definition.get("dimensions", []))
    periods = grain_periods(before, end, definition["time_grain"])
    values = series_reference(events, dims, keep, value, periods, definition.get("lookback_days"))
    out: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
    for (s, e, *key), current in values.items():
        if s < start:
            continue
        previous_period = next(p for p in periods if p[1] == s)
        previous = values.get((*previous_period, *key))
        out[(s, e, *key)] = (previous, growth(current, previous), current)
    return out


def as_compared(
    rows: list[tuple[Any, ...]], dims: int
) -> dict[tuple[Any, ...], tuple[Any, Any, Any]]:
    return {tuple(r[: 2 + dims]): (r[2 + dims], r[3 + dims], r[4 + dims]) for r in rows}


def assert_compared(
    actual: dict[tuple[Any, ...], tuple[Any, Any, Any]],
    expected: dict[tuple[Any, ...], tuple[Any, Any, Any]],
    growth_tolerance: float = 0.0,
) -> None:
    assert set(actual) == set(expected)
    for key, (previous, pct, current) in expected.items():
        got_previous, got_pct, got_current = actual[key]
        assert same_number(got_current, current), (key, got_current, current)
        assert same_number(got_previous, previous), (key, got_previous, previous)
        if growth_tolerance and pct is not None and got_pct is not None:
            assert abs(float(got_pct) - float(pct)) <= growth_tolerance, (key, got_pct, pct)
        else:
            assert got_pct == pct, (key, got_pct, pct)


def _compared(
    name: str, metric_type: str, formula: str, grain: str, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "metric_type": metric_type,
        "data_source": "events",
        "calculation_formula": formula,
        "time_grain": grain,
        "compare_to": "previous_period",
        **extra,
    }


def _actors(rows: list[dict[str, Any]]) -> Any:
    return aggregate("distinct", [r["actor_id"] for r in rows])


ALL = lambda r: True  # noqa: E731

CASES = [
    (
        "wau-week-over-week",
        _compared("WAU growth", "DISTINCT_COUNT", "actor_id", "week"),
        ALL,
        _actors,
        (date(2025, 1, 6), date(2025, 3, 3), date(2024, 12, 30)),
        0.0,
    ),
    (
        "daily-count-by-type",
        _compared("Daily by type", "COUNT", "*", "day", dimensions=["event_type"]),
        ALL,
        lambda rows: len(rows),
        (date(2025, 1, 1), date(2025, 1, 20), date(2024, 12, 31)),
        0.0,
    ),
    (
        "monthly-revenue-from-an-empty-december",
        _compared("Monthly revenue", "SUM", "revenue_cents", "month"),
        ALL,
        lambda rows: aggregate("sum", [r["revenue_cents"] for r in rows]),
        (date(2025, 1, 1), date(2025, 3, 1), date(2024, 12, 1)),
        0.0,
    ),
    (
        "rolling-7d-actors-day-over-day",
        _compared("WAU rolling", "DISTINCT_COUNT", "actor_id", "day", lookback_days=7),
        ALL,
        _actors,
        (date(2025, 1, 1), date(2025, 1, 25), date(2024, 12, 31)),
        0.0,
    ),
    (
        "weekly-average-by-entity-type",
        _compared(
            "Average revenue", "AVERAGE", "revenue_cents", "week", dimensions=["entity_type"]
        ),
        ALL,
        lambda rows: aggregate("avg", [r["revenue_cents"] for r in rows]),
        (date(2025, 1, 6), date(2025, 2, 24), date(2024, 12, 30)),
        0.01,  # averages are doubles on DuckDB: equal to 9 decimals, growth within a cent
    ),
]


@on_every_warehouse("wh")
@pytest.mark.parametrize(
    ("definition", "keep", "value", "period", "tolerance"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_every_path_gives_value_previous_and_growth(
    request: pytest.FixtureRequest,
    wh: Warehouse,
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    keep: Any,
    value: Any,
    period: tuple[date, date, date],
    tolerance: float,
) -> None:
    start, end, before = period
    expected = expected_rows(events, definition, keep, value, start, end, before)
    dims = len(definition.get("dimensions", []))
    compiled = compile_metric(
        definition, wh.dialect, start, end, schema=wh.schema, week_start_index=0
    )
    assert compiled.columns[-3:] == ("previous_value", "growth_pct", "value")
    assert_compared(as_compared(wh.query(compiled.sql, compiled.params), dims), expected, tolerance)
    if not service_paths(request, wh, "daily-count-by-type"):
        return

    service = CustomMetricService(wh, OWNER)
    run = service.test_metric_definition(definition, start, end)
    assert_compared(as_compared(run.rows, dims), expected, tolerance)

    stored = service.create_definition(definition)
    result = service.calculate_metric(stored.definition_id, start, end)
    calculated = {
        (v.period_start, v.period_end, *v.dimensions.values()): (
            v.extra["previous_value"],
            v.extra["growth_pct"],
            v.value,
        )
        for v in result.values
    }
    assert_compared(calculated, expected, tolerance)
    kept = {
        (v.period_start, v.period_end, *v.dimensions.values()): (
            None if v.extra["previous_value"] is None else Decimal(str(v.extra["previous_value"])),
            None if v.extra["growth_pct"] is None else Decimal(v.extra["growth_pct"]),
            v.value,
        )
        for v in service.values(stored.definition_id)
    }
    assert_compared(kept, expected, tolerance)
    if dims == 0:  # no dimensions: every period has its row, even an empty one
        assert len(expected) == len(grain_periods(start, end, definition["time_grain"]))


@on_every_warehouse("wh")
def test_growth_is_null_where_the_previous_value_is_null_or_zero(
    wh: Warehouse, events: list[dict[str, Any]]
) -> None:
    definition = _compared("Revenue", "SUM", "revenue_cents", "month")
    compiled = compile_metric(
        definition, wh.dialect, date(2025, 1, 1), date(2025, 4, 1), schema=wh.schema
    )
    rows = wh.query(compiled.sql, compiled.params)
    january, february, march = rows
    assert january[2] is None and january[3] is None  # December had no events: NULL sum
    assert march[-1] is None and march[3] is None  # March is empty; its growth NULL
    assert february[3] == growth(february[-1], january[-1])
    count = compile_metric(
        {**definition, "metric_type": "COUNT", "calculation_formula": "*"},
        wh.dialect,
        date(2025, 3, 1),
        date(2025, 5, 1),
        schema=wh.schema,
    )
    (march_count, april_count) = wh.query(count.sql, count.params)
    assert march_count[2] > 0 and march_count[-1] == 0 and march_count[3] == Decimal("-100.00")
    assert april_count[2] == 0 and april_count[3] is None  # previous 0: growth NULL


# ---- half-way cases on hand-made events ------------------------------------------------

HALF_WAYS = [
    (32, 33, Decimal("3.13")),  # 3.125: half-even would say 3.12
    (20000, 20003, Decimal("0.02")),  # 0.015: a double rounds it to 0.01
    (8, 7, Decimal("-12.50")),
    (200, 199, Decimal("-0.50")),
    (40000, 39999, Decimal("0.00")),  # -0.0025 rounds to 0.00
    (20000, 19997, Decimal("-0.02")),  # -0.015: away from zero
    (3, 4, Decimal("33.33")),
    (3, 5, Decimal("66.67")),
]


def _events_for(pairs: list[tuple[int, int, Decimal]]) -> list[dict[str, Any]]:
    """One entity per pair: a purchase of `previous` cents on Jan 1, `current` on Jan 2."""
    rows = []
    for index, (previous, current, _) in enumerate(pairs):
        for day, cents in ((1, previous), (2, current)):
            at = datetime(2025, 1, day, 12, tzinfo=UTC) + timedelta(seconds=index)
            rows.append(event(f"{index}-{day}", at, "purchase", f"a{index}", f"e{index}", cents))
    return rows


@pytest.fixture(params=EVERY_WAREHOUSE)
def half_way_wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    params = connection_params(request, request.param)
    with own_warehouse(request.param, tmp_path, params, _events_for(HALF_WAYS)) as wh:
        yield wh


def test_half_way_growth_rounds_away_from_zero(half_way_wh: Warehouse) -> None:
    wh = half_way_wh
    definition = _compared("Half", "SUM", "revenue_cents", "day", dimensions=["entity_id"])
    compiled = compile_metric(
        definition, wh.dialect, date(2025, 1, 2), date(2025, 1, 3), schema=wh.schema
    )
    got = {r[2]: (r[3], r[4], r[5]) for r in wh.query(compiled.sql, compiled.params)}
    for index, (previous, current, pct) in enumerate(HALF_WAYS):
        assert got[f"e{index}"] == (previous, pct, current)
        assert growth(current, previous) == pct  # the reference agrees with the hand figure


# ---- refused -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grain", "start", "end", "field"),
    [
        ("week", date(2025, 1, 7), date(2025, 2, 3), "start"),  # a Tuesday
        ("week", date(2025, 1, 6), date(2025, 2, 4), "end"),
        ("month", date(2025, 1, 2), date(2025, 3, 1), "start"),
        ("month", date(2025, 1, 1), date(2025, 2, 15), "end"),
        ("day", date(1, 1, 1), date(1, 1, 3), "start"),  # no day before year 1
    ],
)
def test_compare_needs_whole_periods(grain: str, start: date, end: date, field: str) -> None:
    definition = _compared("x", "COUNT", "*", grain)
    for dialect in ("postgres", "duckdb", "spark"):
        with pytest.raises(MetricValidationError) as caught:
            compile_metric(definition, dialect, start, end, week_start_index=0)
        assert caught.value.field == field, str(caught.value)


def test_week_start_is_the_configured_one() -> None:
    definition = _compared("x", "COUNT", "*", "week")
    sunday = compile_metric(
        definition, "duckdb", date(2025, 1, 5), date(2025, 1, 19), week_start_index=6
    )
    assert sunday.series == (
        (date(2025, 1, 5), date(2025, 1, 12)),
        (date(2025, 1, 12), date(2025, 1, 19)),
    )
    with pytest.raises(MetricValidationError, match="Monday"):
        compile_metric(
            definition, "duckdb", date(2025, 1, 5), date(2025, 1, 19), week_start_index=0
        )
