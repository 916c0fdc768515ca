"""Numbers are exact on both warehouses, and formulas whose type or shape cannot make a metric are
refused before anything runs (exponent literals, text under MAX/MIN, formulas without a column)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from custom_metrics import CustomMetricService, MetricValidationError, Principal, compile_metric
from tests.custom_metrics.support import aggregate, as_result, assert_same, reference
from warehouse import Warehouse


def _d(metric_type: str, formula: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "x",
        "metric_type": metric_type,
        "data_source": extra.pop("data_source", "events"),
        "calculation_formula": formula,
        **extra,
    }


@pytest.mark.parametrize("literal", ["1e3", "2.5e2", "1e-3", "1E+3", "12.5E-1", "0.5e1"])
def test_exponent_literals_are_exact(
    literal: str, wh: Warehouse, events: list[dict[str, Any]]
) -> None:
    definition = _d("SUM", f"revenue_cents * {literal}", dimensions=["event_type"])
    compiled = compile_metric(definition, wh.dialect, schema=wh.schema)
    factor = Decimal(literal)
    expected = reference(
        events,
        ["event_type"],
        lambda r: True,
        lambda rows: aggregate(
            "sum",
            [None if r["revenue_cents"] is None else r["revenue_cents"] * factor for r in rows],
        ),
    )
    assert_same(as_result(wh.query(compiled.sql, compiled.params)), expected)


@pytest.mark.parametrize(
    ("literal", "plain"), [("1e3", "1000"), ("2.5e2", "250"), ("1e-3", "0.001")]
)
def test_exponent_literals_are_bound_in_plain_form(literal: str, plain: str) -> None:
    compiled = compile_metric(_d("SUM", f"revenue_cents * {literal}"), "duckdb")
    (value,) = compiled.params.values()
    assert str(value) == plain and value.as_tuple().exponent <= 0


@pytest.mark.parametrize(
    "literal", ["1e40", "1e-31", "1" * 39, "0." + "1" * 38, "1e999999999", "9" * 40 + ".5"]
)
def test_number_literals_are_bounded(literal: str) -> None:
    with pytest.raises(MetricValidationError, match=r"^calculation_formula: number") as caught:
        compile_metric(_d("SUM", f"revenue_cents * {literal}"), "duckdb")
    assert "out of range" in str(caught.value) or "digits" in str(caught.value)


def test_text_literals_are_bounded() -> None:
    long_text = "a" * 201
    with pytest.raises(MetricValidationError, match=r"^where: a quoted text is longer"):
        compile_metric(_d("COUNT", "*", where=f"event_type = '{long_text}'"), "duckdb")


@pytest.mark.parametrize(
    ("metric_type", "formula", "source"),
    [
        ("MAX", "event_type", "events"),
        ("MIN", "lower(entity_id)", "events"),
        ("MAX", "max(event_type)", "events"),
        ("MIN", "coalesce(actor_id, 'nobody')", "events"),
        ("MAX", "case when revenue_cents > 0 then event_type end", "events"),
        ("MAX", "metric_date", "daily_metrics"),
        ("MIN", "occurred_at", "events"),
        ("PERCENTILE", "percentile(properties.tier, 0.5)", "events"),
        ("SUM", "event_type = 'click'", "events"),
        ("AVERAGE", "avg(entity_id)", "events"),
    ],
)
def test_non_numeric_values_are_refused_up_front(
    metric_type: str, formula: str, source: str
) -> None:
    for dialect in ("postgres", "duckdb", "spark"):
        with pytest.raises(
            MetricValidationError, match=r"numeric expression|needs numbers"
        ) as caught:
            compile_metric(_d(metric_type, formula, data_source=source), dialect)
        assert caught.value.field == "calculation_formula"


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    [
        ("calculation_formula", {"calculation_formula": "revenue_cents + event_type"}, "add"),
        ("calculation_formula", {"calculation_formula": "length(revenue_cents)"}, "text"),
        ("where", {"where": "revenue_cents like '1%'"}, "LIKE compares text"),
        ("where", {"where": "revenue_cents"}, "must be a condition"),
        ("where", {"where": "event_type = 5"}, "cannot compare"),
        ("where", {"where": "revenue_cents in ('a', 'b')"}, "cannot compare"),
        ("where", {"where": "event_type and true"}, "AND combines conditions"),
        ("calculation_formula", {"calculation_formula": "coalesce(revenue_cents, 'x')"}, "mixes"),
    ],
)
def test_type_errors_are_refused(field: str, overrides: dict[str, Any], message: str) -> None:
    definition = {**_d("SUM", "revenue_cents"), **overrides}
    with pytest.raises(MetricValidationError, match=message) as caught:
        compile_metric(definition, "postgres")
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("metric_type", "formula"),
    [
        ("SUM", "42"),
        ("SUM", "sum(42)"),
        ("AVERAGE", "1 + 2"),
        ("MAX", "-7"),
        ("COUNT", "1"),
        ("COUNT", "count_if(1 = 1)"),
        ("DISTINCT_COUNT", "count(distinct 3)"),
        ("PERCENTILE", "percentile(5, 0.5)"),
        ("RATIO", "sum(1) / sum(2)"),
        ("COUNT", "null"),
    ],
)
def test_formula_without_a_column_is_refused(metric_type: str, formula: str) -> None:
    with pytest.raises(MetricValidationError, match="refers to no column") as caught:
        compile_metric(_d(metric_type, formula), "duckdb")
    assert caught.value.field == "calculation_formula"


def test_max_of_text_never_reaches_the_values_table(wh: Warehouse) -> None:
    service = CustomMetricService(wh, Principal("kinds"))
    with pytest.raises(MetricValidationError, match="numeric expression"):
        service.create_definition(_d("MAX", "event_type"))
    stored = service.create_definition(_d("MAX", "revenue_cents", dimensions=["event_type"]))
    result = service.calculate_metric(stored.definition_id, "2025-01-01", "2025-01-08")
    assert result.status == "SUCCESS" and result.values


_CUT = datetime(2025, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("where", "keep"),
    [
        ("coalesce(occurred_at, ingested_at) >= '2025-01-15'", lambda r: r["occurred_at"] >= _CUT),
        (
            "'2025-01-15' between ingested_at and occurred_at",
            lambda r: r["ingested_at"] <= _CUT <= r["occurred_at"],
        ),
        ("(occurred_at) >= '2025-01-15'", lambda r: r["occurred_at"] >= _CUT),
    ],
)
def test_date_text_is_bound_as_a_time_wherever_it_meets_one(
    where: str, keep: Any, wh: Warehouse, events: list[dict[str, Any]]
) -> None:
    compiled = compile_metric(_d("COUNT", "*", where=where), wh.dialect, schema=wh.schema)
    assert isinstance(next(iter(compiled.params.values())), datetime)
    expected = reference(events, [], keep, lambda rows: aggregate("count_star", rows))
    assert_same(as_result(wh.query(compiled.sql, compiled.params)), expected)
