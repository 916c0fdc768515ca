"""compile_metric's contract: SQL text per dialect, bound parameters, output columns, errors
that name the offending part, and the model / YAML loading."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import (
    MetricDefinition,
    MetricValidationError,
    compile_metric,
    load_definitions,
    load_examples,
)
from custom_metrics.definitions import load_definitions_text

RICH: dict[str, Any] = {
    "name": "rich",
    "metric_type": "RATIO",
    "data_source": "events",
    "calculation_formula": "count_if(event_type = 'purchase') / count(*)",
    "dimensions": ["entity_type", "properties.industry"],
    "filters": {"event_type": ["purchase", "click"], "properties.tier": "gold"},
    "where": "revenue_cents > 250 and lower(actor_id) like 'u1%'",
}


def test_postgres_placeholders_and_params() -> None:
    compiled = compile_metric(RICH, "postgres", date(2025, 1, 1), date(2025, 2, 1), schema="m")
    names = set(re.findall(r"%\((\w+)\)s", compiled.sql))
    assert names == set(compiled.params)
    assert "$" not in compiled.sql
    assert compiled.params["period_start"] == datetime(2025, 1, 1, tzinfo=UTC)
    assert compiled.params["period_end"] == datetime(2025, 2, 1, tzinfo=UTC)
    assert compiled.columns == ("entity_type", "industry", "value")
    assert "FROM m.stg_events" in compiled.sql
    assert "NULLIF(" in compiled.sql and "AS DECIMAL)" in compiled.sql


def test_duckdb_placeholders_and_params() -> None:
    compiled = compile_metric(RICH, "duckdb", schema="m")
    names = set(re.findall(r"\$(\w+)", compiled.sql))
    assert names == set(compiled.params)
    assert "%(" not in compiled.sql and "AS DOUBLE)" in compiled.sql


def test_spark_placeholders_and_params() -> None:
    compiled = compile_metric(RICH, "spark", "2025-01-01", "2025-02-01", schema="m")
    names = set(re.findall(r":(\w+)", compiled.sql))
    assert names == set(compiled.params)
    assert "CAST(:period_start AS TIMESTAMP)" in compiled.sql
    assert compiled.params["period_start"] == "2025-01-01T00:00:00+00:00"  # text, cast in SQL


@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "spark"])
def test_every_literal_is_bound(dialect: str) -> None:
    compiled = compile_metric(RICH, dialect)
    values = set(map(str, compiled.params.values()))
    keys = {"$.industry", "$.tier"} if dialect == "spark" else {"industry", "tier"}  # Spark: paths
    assert {"purchase", "click", "gold", "250", "u1%", *keys} <= values
    for text in ("purchase", "click", "gold", "250", "u1%", "'"):
        assert text not in compiled.sql, text
    assert ";" not in compiled.sql and "--" not in compiled.sql


def test_default_schema_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_SCHEMA", "analytics")
    assert "analytics.stg_events" in compile_metric(RICH).sql
    monkeypatch.delenv("METRICS_SCHEMA")
    assert "metrics.stg_events" in compile_metric(RICH).sql


def test_model_is_accepted_like_a_mapping() -> None:
    model = MetricDefinition.model_validate(RICH)
    assert compile_metric(model).sql == compile_metric(RICH).sql


def test_rollup_periods_are_dates() -> None:
    definition = {
        **RICH,
        "data_source": "weekly_metrics",
        "dimensions": ["week_start"],
        "filters": {},
        "where": None,
        "calculation_formula": "sum(event_count) / sum(prev_event_count)",
    }
    compiled = compile_metric(definition, "postgres", date(2025, 1, 6), date(2025, 2, 3))
    assert "week_start >= %(period_start)s" in compiled.sql
    assert compiled.params["period_start"] == date(2025, 1, 6)
    with pytest.raises(MetricValidationError, match="whole day"):
        compile_metric(definition, "postgres", datetime(2025, 1, 6, 12, tzinfo=UTC), None)


def test_errors_name_field_and_position() -> None:
    with pytest.raises(MetricValidationError) as caught:
        compile_metric({**RICH, "where": "event_type = 'a' and pg_sleep(1) > 0"})
    error = caught.value
    assert error.field == "where" and error.position == 21
    assert "pg_sleep" in str(error) and "position 21" in str(error)
    with pytest.raises(MetricValidationError, match=r"^dimensions\[1\]: unknown column"):
        compile_metric({**RICH, "dimensions": ["entity_type", "nope"]})
    with pytest.raises(MetricValidationError, match=r"^dialect"):
        compile_metric(RICH, "mysql")
    with pytest.raises(MetricValidationError, match=r"^start: the period's start"):
        compile_metric(RICH, "postgres", date(2025, 2, 1), date(2025, 1, 1))


@pytest.mark.parametrize(
    ("metric_type", "formula", "fragment"),
    [
        ("COUNT", "*", "COUNT(*)"),
        ("COUNT", "actor_id", "COUNT(actor_id)"),
        ("COUNT", "count_if(revenue_cents > 0)", "COUNT(CASE WHEN revenue_cents > "),
        ("SUM", "sum(revenue_cents)", "SUM(revenue_cents)"),
        ("AVERAGE", "revenue_cents", "AVG(revenue_cents)"),
        ("DISTINCT_COUNT", "actor_id", "COUNT(DISTINCT actor_id)"),
        ("DISTINCT_COUNT", "count(distinct actor_id)", "COUNT(DISTINCT actor_id)"),
        ("MAX", "revenue_cents", "MAX(revenue_cents)"),
        ("MIN", "min(revenue_cents)", "MIN(revenue_cents)"),
        ("PERCENTILE", "percentile(revenue_cents, 0.95)", "PERCENTILE_CONT(%(p1)s) WITHIN GROUP"),
    ],
)
def test_formula_meaning_per_type(metric_type: str, formula: str, fragment: str) -> None:
    definition = {
        "name": "x",
        "metric_type": metric_type,
        "data_source": "events",
        "calculation_formula": formula,
    }
    assert fragment in compile_metric(definition, "postgres").sql


def test_percentile_on_duckdb_uses_quantile_cont() -> None:
    definition = {
        "name": "x",
        "metric_type": "PERCENTILE",
        "data_source": "events",
        "calculation_formula": "revenue_cents",
        "percentile": 0.9,
    }
    compiled = compile_metric(definition, "duckdb")
    assert "QUANTILE_CONT(CAST(revenue_cents AS DOUBLE), $p1)" in compiled.sql
    assert compiled.params["p1"] == 0.9


def test_like_wildcards_only_inside_strings() -> None:
    ok = {**RICH, "where": "event_type like '%click%'"}
    assert compile_metric(ok).params
    with pytest.raises(MetricValidationError, match="only allowed inside a string"):
        compile_metric({**RICH, "where": "event_type like 'a' and 1 %(x)s"})


def test_yaml_loading(tmp_path: Path) -> None:
    file = tmp_path / "defs.yml"
    file.write_text(
        "definitions:\n"
        "  - {name: a, metric_type: count, data_source: events, calculation_formula: '*'}\n"
        "  - name: b\n    metric_type: SUM\n    data_source: daily_metrics\n"
        "    calculation_formula: event_count\n    filters: {metric_date: 2025-01-01}\n"
    )
    a, b = load_definitions(file)
    assert a.metric_type.value == "COUNT" and b.filters == {"metric_date": date(2025, 1, 1)}
    assert compile_metric(b).params["p1"] == date(2025, 1, 1)
    with pytest.raises(MetricValidationError, match=r"\[0\]: metric_type"):
        load_definitions_text(
            "- {name: a, metric_type: nope, data_source: events, calculation_formula: '*'}"
        )
    with pytest.raises(MetricValidationError, match="not valid YAML"):
        load_definitions_text("a: [")
    with pytest.raises(MetricValidationError, match="larger than"):
        load_definitions_text("#" * 300_000)


def test_examples_load_and_compile() -> None:
    examples = load_examples()
    assert set(examples) == {
        "active_users_30d",
        "average_revenue_per_customer",
        "license_renewal_rate_by_industry",
        "asset_utilization_by_category",
        "daily_active_users",
        "weekly_active_users",
        "weekly_active_users_growth",
        "view_checkout_purchase_funnel",
        "weekly_retention_8_weeks",
    }
    for definition in examples.values():
        for dialect in ("postgres", "duckdb", "spark"):
            # whole Monday weeks, so the week-over-week example has a previous week
            period = (date(2025, 1, 6), date(2025, 2, 3))
            assert compile_metric(definition, dialect, *period, week_start_index=0).sql


def test_compile_is_fast_enough_for_interactive_use() -> None:
    import time

    began = time.perf_counter()
    for _ in range(50):
        compile_metric(RICH, "postgres")
    assert (time.perf_counter() - began) / 50 < 0.05  # the benchmark holds the 5 ms target
