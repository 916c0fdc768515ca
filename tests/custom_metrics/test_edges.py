"""Inputs at the edges of the calendar and of the Python interface end in a MetricValidationError
naming the input, never in OverflowError, ValueError or AttributeError."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from custom_metrics import CustomMetricService, MetricValidationError, Principal, compile_metric
from custom_metrics.definitions import TimeGrain
from custom_metrics.periods import split_period
from warehouse import Warehouse

EAST = timezone(timedelta(hours=5))
WEST = timezone(timedelta(hours=-5))
BASE: dict[str, Any] = {
    "name": "edges",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
}


@pytest.mark.parametrize(
    ("overrides", "start", "end", "field"),
    [
        ({}, datetime(1, 1, 1, tzinfo=EAST), None, "start"),
        ({}, None, datetime(9999, 12, 31, 23, tzinfo=WEST), "end"),
        ({}, "0001-01-01T00:00:00+05:00", None, "start"),
        ({}, None, "9999-12-31T23:30:00-05:00", "end"),
        ({"filters": {"occurred_at": "0001-01-01T01:00:00+05:00"}}, None, None, "filters"),
        ({"where": "occurred_at >= '9999-12-31T23:00:00-05:00'"}, None, None, "where"),
        ({"lookback_days": 366}, None, date(1, 6, 1), "lookback_days"),
        ({"lookback_days": 30}, None, datetime(1, 1, 2, tzinfo=UTC), "lookback_days"),
        ({}, 5, None, "start"),
        ({}, None, [2025, 1, 1], "end"),
        ({}, {"day": 1}, None, "start"),
        ({}, 2025.5, None, "start"),
        ({}, "yesterday", None, "start"),
    ],
)
@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "spark"])
def test_bad_periods_are_clear_errors(
    overrides: dict[str, Any], start: Any, end: Any, field: str, dialect: str
) -> None:
    with pytest.raises(MetricValidationError) as caught:
        compile_metric({**BASE, **overrides}, dialect, start, end)
    assert caught.value.field.startswith(field), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("start", "end", "grain", "count"),
    [
        (date(9999, 11, 1), date(9999, 12, 31), TimeGrain.MONTH, 2),
        (date(9999, 12, 1), date(9999, 12, 31), TimeGrain.MONTH, 1),
        (date(9999, 12, 20), date(9999, 12, 31), TimeGrain.WEEK, 2),
        (date(9999, 12, 29), date(9999, 12, 31), TimeGrain.DAY, 2),
        (date(1, 1, 1), date(1, 2, 1), TimeGrain.MONTH, 1),
    ],
)
def test_buckets_at_the_end_of_the_calendar(
    start: date, end: date, grain: TimeGrain, count: int
) -> None:
    buckets = split_period(start, end, grain)
    assert len(buckets) == count and buckets[0][0] == start and buckets[-1][1] == end


def test_month_grain_at_9999_12_calculates(wh: Warehouse) -> None:
    service = CustomMetricService(wh, Principal("edges"))
    stored = service.create_definition({**BASE, "time_grain": "month"})
    result = service.calculate_metric(stored.definition_id, "9999-11-01", "9999-12-31")
    assert result.status == "SUCCESS"
    assert [v.value for v in result.values] == [0, 0]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("0001-01-01T00:00:00+05:00", "0001-01-03", "start"),
        (5, "2025-01-02", "start"),
        ("2025-01-01", ["x"], "end"),
    ],
)
def test_calculate_with_bad_bounds_is_a_clear_error(
    wh: Warehouse, start: Any, end: Any, field: str
) -> None:
    service = CustomMetricService(wh, Principal("edges"))
    stored = service.create_definition(BASE)
    with pytest.raises(MetricValidationError) as caught:
        service.calculate_metric(stored.definition_id, start, end)
    assert caught.value.field == field
