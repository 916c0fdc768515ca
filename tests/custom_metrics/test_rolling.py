"""Rolling windows on every path: `compile_metric`, `test` and `calculate` return the same
per-period values, each equal to plain Python over the events of [end - N, end) of its period
(DAU / WAU / MAU, a 7-day revenue sum, weekly and monthly grains, dimensions)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from custom_metrics import CustomMetricService, MetricValidationError, Principal, compile_metric
from tests.custom_metrics.support import (
    aggregate,
    as_result,
    assert_same,
    grain_periods,
    series_reference,
    service_paths,
)
from tests.targets import on_every_warehouse
from warehouse import Warehouse

OWNER = Principal("rolling", "analytics", "acme")
START, END = date(2025, 1, 1), date(2025, 2, 15)


def _rolling(name: str, metric_type: str, formula: str, days: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "metric_type": metric_type,
        "data_source": "events",
        "calculation_formula": formula,
        "lookback_days": days,
        "time_grain": extra.pop("time_grain", "day"),
        **extra,
    }


def _actors(rows: list[dict[str, Any]]) -> Any:
    return aggregate("distinct", [r["actor_id"] for r in rows])


def _revenue(rows: list[dict[str, Any]]) -> Any:
    return aggregate("sum", [r["revenue_cents"] for r in rows])


CASES = [
    ("dau", _rolling("DAU", "DISTINCT_COUNT", "actor_id", 1), _actors, ()),
    ("wau", _rolling("WAU", "DISTINCT_COUNT", "actor_id", 7), _actors, ()),
    ("mau", _rolling("MAU", "DISTINCT_COUNT", "actor_id", 30), _actors, ()),
    ("revenue-7d", _rolling("Revenue 7d", "SUM", "revenue_cents", 7), _revenue, ()),
    (
        "revenue-7d-by-type",
        _rolling(
            "Revenue 7d by type",
            "SUM",
            "revenue_cents",
            7,
            dimensions=["event_type"],
            filters={"entity_type": ["asset", "license"]},
        ),
        _revenue,
        ("event_type",),
    ),
    (
        "wau-weekly-grain",
        _rolling("WAU weekly", "COUNT", "actor_id", 14, time_grain="week"),
        lambda rows: aggregate("count", [r["actor_id"] for r in rows]),
        (),
    ),
    (
        "mau-monthly-by-category",
        _rolling(
            "MAU monthly",
            "DISTINCT_COUNT",
            "actor_id",
            30,
            time_grain="month",
            dimensions=["properties.category"],
        ),
        _actors,
        ("properties.category",),
    ),
]


def _keep_for(definition: dict[str, Any]) -> Any:
    wanted = definition.get("filters", {}).get("entity_type")
    return (lambda r: r["entity_type"] in wanted) if wanted else (lambda r: True)


@on_every_warehouse("wh")
@pytest.mark.parametrize(
    ("definition", "value", "dims"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_path_gives_the_rolling_value_per_period(
    request: pytest.FixtureRequest,
    wh: Warehouse,
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    value: Any,
    dims: tuple[str, ...],
) -> None:
    periods = grain_periods(START, END, definition["time_grain"])
    expected = series_reference(
        events, list(dims), _keep_for(definition), value, periods, definition["lookback_days"]
    )
    compiled = compile_metric(
        definition, wh.dialect, START, END, schema=wh.schema, week_start_index=0
    )
    compiled_rows = as_result(wh.query(compiled.sql, compiled.params))
    assert_same(compiled_rows, expected)
    assert compiled.series == tuple(periods)
    if not service_paths(request, wh, "revenue-7d-by-type"):
        return

    service = CustomMetricService(wh, OWNER)
    tested = as_result(service.test_metric_definition(definition, START, END).rows)
    assert_same(tested, expected)

    stored = service.create_definition(definition)
    result = service.calculate_metric(stored.definition_id, START, END)
    calculated = {
        (v.period_start, v.period_end, *(v.dimensions[d] for d in compiled.dimension_columns)): (
            v.value
        )
        for v in result.values
    }
    assert_same(calculated, expected)
    kept = {
        (v.period_start, v.period_end, *v.dimensions.values()): v.value
        for v in service.values(stored.definition_id)
    }
    assert_same(kept, expected)


@on_every_warehouse("wh")
def test_empty_periods_keep_their_row_without_dimensions(
    wh: Warehouse, events: list[dict[str, Any]]
) -> None:
    """Days after the data ends (Feb 28): a 3-day count goes down to 0 and stays there."""
    definition = _rolling("tail", "COUNT", "*", 3)
    lo, hi = date(2025, 2, 27), date(2025, 3, 6)
    compiled = compile_metric(definition, wh.dialect, lo, hi, schema=wh.schema)
    rows = wh.query(compiled.sql, compiled.params)
    expected = series_reference(
        events, [], lambda r: True, lambda rows: len(rows), grain_periods(lo, hi, "day"), 3
    )
    assert_same(as_result(rows), expected)
    assert [r[-1] for r in rows][-3:] == [0, 0, 0] and rows[0][-1] > 0


@on_every_warehouse("wh")
def test_longest_look_back_is_accepted_and_one_more_is_not(wh: Warehouse) -> None:
    compiled = compile_metric(
        _rolling("year", "COUNT", "*", 366), wh.dialect, START, date(2025, 1, 3), schema=wh.schema
    )
    assert len(wh.query(compiled.sql, compiled.params)) == 2
    with pytest.raises(MetricValidationError) as caught:
        compile_metric(_rolling("too long", "COUNT", "*", 367), wh.dialect, START, END)
    assert caught.value.field == "lookback_days"


def test_series_bounds_are_whole_days() -> None:
    with pytest.raises(MetricValidationError) as caught:
        compile_metric(_rolling("x", "COUNT", "*", 7), "duckdb", "2025-01-01T12:00:00", END)
    assert caught.value.field == "start"
