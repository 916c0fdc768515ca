"""Hostile and malformed inputs for the product-analytics fields (lookback_days, compare_to,
FUNNEL, RETENTION): each is refused with a MetricValidationError naming the field, on both
dialects, and nothing reaches the database."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from custom_metrics import CustomMetricService, MetricValidationError, compile_metric
from tests.custom_metrics.support import RecordingRaw

FUNNEL: dict[str, Any] = {
    "name": "hostile funnel",
    "metric_type": "FUNNEL",
    "data_source": "events",
    "steps": [{"event_type": "page_view"}, {"event_type": "purchase"}],
    "conversion_window_days": 7,
}
RETENTION: dict[str, Any] = {
    "name": "hostile retention",
    "metric_type": "RETENTION",
    "data_source": "events",
    "cohort_event": {"event_type": "signup"},
    "return_event": {"event_type": "visit"},
    "period": "week",
    "periods": 4,
}
COUNT: dict[str, Any] = {
    "name": "hostile series",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
    "time_grain": "day",
}
STEP = {"event_type": "x"}

# (id, base, fields overriding it (None removes the field), the field the error must name)
CORPUS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    # lookback_days and compare_to on the aggregate types
    ("lookback-zero", COUNT, {"lookback_days": 0}, "lookback_days"),
    ("lookback-huge", COUNT, {"lookback_days": 10**9}, "lookback_days"),
    ("lookback-list", COUNT, {"lookback_days": [7]}, "lookback_days"),
    ("lookback-sql", COUNT, {"lookback_days": "7; drop table x"}, "lookback_days"),
    ("compare-unknown", COUNT, {"compare_to": "previous_year"}, "compare_to"),
    ("compare-sql", COUNT, {"compare_to": "previous_period'; --"}, "compare_to"),
    ("compare-number", COUNT, {"compare_to": 1}, "compare_to"),
    ("compare-true", COUNT, {"compare_to": True}, "compare_to"),
    ("compare-list", COUNT, {"compare_to": ["previous_period"]}, "compare_to"),
    (
        "compare-without-grain",
        COUNT,
        {"compare_to": "previous_period", "time_grain": None},
        "compare_to",
    ),
    ("compare-zero-width", COUNT, {"compare_to": "previous\u200b_period"}, "compare_to"),
    ("dimension-named-growth", COUNT, {"dimensions": ["properties.growth_pct"]}, "dimensions"),
    ("dimension-named-period", COUNT, {"dimensions": ["properties.period_start"]}, "dimensions"),
    ("dimension-cm-prefix", COUNT, {"dimensions": ["properties.cm_lo"]}, "dimensions"),
    ("steps-on-count", COUNT, {"steps": [STEP, STEP]}, "steps"),
    ("window-on-count", COUNT, {"conversion_window_days": 7}, "conversion_window_days"),
    ("counted-by-on-count", COUNT, {"counted_by": "actor_id"}, "counted_by"),
    ("cohort-on-count", COUNT, {"cohort_event": STEP}, "cohort_event"),
    ("period-on-count", COUNT, {"period": "week"}, "period"),
    ("periods-on-count", COUNT, {"periods": 3}, "periods"),
    # FUNNEL shape
    ("funnel-no-steps", FUNNEL, {"steps": None}, "steps"),
    ("funnel-one-step", FUNNEL, {"steps": [STEP]}, "steps"),
    ("funnel-eleven-steps", FUNNEL, {"steps": [STEP] * 11}, "steps"),
    ("funnel-empty-steps", FUNNEL, {"steps": []}, "steps"),
    ("funnel-steps-text", FUNNEL, {"steps": "page_view,purchase"}, "steps"),
    ("funnel-steps-mapping", FUNNEL, {"steps": {"a": STEP, "b": STEP}}, "steps"),
    ("funnel-step-text", FUNNEL, {"steps": ["page_view", "purchase"]}, "steps"),
    ("funnel-step-empty", FUNNEL, {"steps": [STEP, {}]}, "steps"),
    ("funnel-step-nested", FUNNEL, {"steps": [STEP, {"event_type": {"$ne": 1}}]}, "steps"),
    ("funnel-step-empty-list", FUNNEL, {"steps": [STEP, {"event_type": []}]}, "steps"),
    ("funnel-step-unknown-column", FUNNEL, {"steps": [STEP, {"password": "x"}]}, "steps[1]"),
    (
        "funnel-step-sql-key",
        FUNNEL,
        {"steps": [STEP, {"event_type = 'a' or 1=1 --": "x"}]},
        "steps[1]",
    ),
    ("funnel-step-catalog", FUNNEL, {"steps": [{"pg_catalog.pg_user": "x"}, STEP]}, "steps[0]"),
    ("funnel-step-control-char", FUNNEL, {"steps": [STEP, {"event_type": "a\x00b"}]}, "steps[1]"),
    ("funnel-step-number-for-text", FUNNEL, {"steps": [STEP, {"event_type": True}]}, "steps[1]"),
    (
        "funnel-step-text-for-number",
        FUNNEL,
        {"steps": [STEP, {"revenue_cents": "lots"}]},
        "steps[1]",
    ),
    ("funnel-step-huge-int", FUNNEL, {"steps": [STEP, {"revenue_cents": 2**70}]}, "steps[1]"),
    ("funnel-step-bad-date", FUNNEL, {"steps": [STEP, {"event_date": "2025-02-30"}]}, "steps[1]"),
    (
        "funnel-step-null-in-list",
        FUNNEL,
        {"steps": [STEP, {"event_type": ["a", None]}]},
        "steps[1]",
    ),
    ("funnel-step-long-text", FUNNEL, {"steps": [STEP, {"event_type": "x" * 501}]}, "steps"),
    (
        "funnel-step-too-many-keys",
        FUNNEL,
        {"steps": [STEP, {f"properties.k{i}": "v" for i in range(21)}]},
        "steps",
    ),
    ("funnel-step-json-sql", FUNNEL, {"steps": [STEP, {"properties.a') or ('1": "x"}]}, "steps[1]"),
    ("funnel-window-missing", FUNNEL, {"conversion_window_days": None}, "conversion_window_days"),
    ("funnel-window-zero", FUNNEL, {"conversion_window_days": 0}, "conversion_window_days"),
    ("funnel-window-negative", FUNNEL, {"conversion_window_days": -1}, "conversion_window_days"),
    ("funnel-window-367", FUNNEL, {"conversion_window_days": 367}, "conversion_window_days"),
    ("funnel-window-text", FUNNEL, {"conversion_window_days": "7"}, "conversion_window_days"),
    ("funnel-window-float", FUNNEL, {"conversion_window_days": 7.0}, "conversion_window_days"),
    ("funnel-window-true", FUNNEL, {"conversion_window_days": True}, "conversion_window_days"),
    (
        "funnel-window-interval-sql",
        FUNNEL,
        {"conversion_window_days": "7 days'); --"},
        "conversion_window_days",
    ),
    ("funnel-counted-by-column", FUNNEL, {"counted_by": "event_type"}, "counted_by"),
    ("funnel-counted-by-sql", FUNNEL, {"counted_by": "actor_id); drop table x; --"}, "counted_by"),
    ("funnel-counted-by-json", FUNNEL, {"counted_by": "properties.user"}, "counted_by"),
    ("funnel-counted-by-number", FUNNEL, {"counted_by": 1}, "counted_by"),
    ("funnel-with-formula", FUNNEL, {"calculation_formula": "count(*)"}, "calculation_formula"),
    ("funnel-with-dimensions", FUNNEL, {"dimensions": ["event_type"]}, "dimensions"),
    ("funnel-with-grain", FUNNEL, {"time_grain": "day"}, "time_grain"),
    ("funnel-with-lookback", FUNNEL, {"lookback_days": 7}, "lookback_days"),
    ("funnel-with-compare", FUNNEL, {"compare_to": "previous_period"}, "compare_to"),
    ("funnel-with-percentile", FUNNEL, {"percentile": 0.5}, "definition"),
    ("funnel-with-cohort", FUNNEL, {"cohort_event": STEP}, "cohort_event"),
    ("funnel-on-rollup", FUNNEL, {"data_source": "daily_metrics"}, "data_source"),
    ("funnel-where-injection", FUNNEL, {"where": "1=1; delete from metrics.stg_events"}, "where"),
    (
        "funnel-where-subquery",
        FUNNEL,
        {"where": "actor_id in (select usename from pg_user)"},
        "where",
    ),
    ("funnel-filter-unknown", FUNNEL, {"filters": {"secret": "x"}}, "filters"),
    # RETENTION shape
    ("retention-no-cohort", RETENTION, {"cohort_event": None}, "cohort_event"),
    ("retention-no-return", RETENTION, {"return_event": None}, "return_event"),
    ("retention-no-period", RETENTION, {"period": None}, "period"),
    ("retention-no-periods", RETENTION, {"periods": None}, "periods"),
    ("retention-cohort-text", RETENTION, {"cohort_event": "signup"}, "cohort_event"),
    ("retention-cohort-list", RETENTION, {"cohort_event": [STEP]}, "cohort_event"),
    ("retention-cohort-empty", RETENTION, {"cohort_event": {}}, "cohort_event"),
    (
        "retention-cohort-unknown-column",
        RETENTION,
        {"cohort_event": {"pg_sleep(10)": 1}},
        "cohort_event",
    ),
    (
        "retention-return-nested",
        RETENTION,
        {"return_event": {"event_type": [["a"]]}},
        "return_event",
    ),
    (
        "retention-return-bad-timestamp",
        RETENTION,
        {"return_event": {"occurred_at": "yesterday"}},
        "return_event",
    ),
    (
        "retention-return-rtl",
        RETENTION,
        {"return_event": {"event_type": "a\u202eb"}},
        "return_event",
    ),
    ("retention-period-hour", RETENTION, {"period": "hour"}, "period"),
    ("retention-period-year", RETENTION, {"period": "year"}, "period"),
    ("retention-period-number", RETENTION, {"period": 7}, "period"),
    ("retention-period-sql", RETENTION, {"period": "week'; --"}, "period"),
    ("retention-periods-zero", RETENTION, {"periods": 0}, "periods"),
    ("retention-periods-53", RETENTION, {"periods": 53}, "periods"),
    ("retention-periods-negative", RETENTION, {"periods": -4}, "periods"),
    ("retention-periods-text", RETENTION, {"periods": "8"}, "periods"),
    ("retention-periods-float", RETENTION, {"periods": 8.0}, "periods"),
    ("retention-with-steps", RETENTION, {"steps": [STEP, STEP]}, "steps"),
    ("retention-with-window", RETENTION, {"conversion_window_days": 7}, "conversion_window_days"),
    ("retention-with-formula", RETENTION, {"calculation_formula": "*"}, "calculation_formula"),
    ("retention-with-grain", RETENTION, {"time_grain": "week"}, "time_grain"),
    ("retention-with-dimensions", RETENTION, {"dimensions": ["event_type"]}, "dimensions"),
    ("retention-on-rollup", RETENTION, {"data_source": "weekly_metrics"}, "data_source"),
    ("retention-counted-by-entity-type", RETENTION, {"counted_by": "entity_type"}, "counted_by"),
    ("retention-where-comment", RETENTION, {"where": "event_type = 'a' -- '"}, "where"),
    ("aggregate-without-formula", COUNT, {"calculation_formula": None}, "calculation_formula"),
    ("metric-type-lower-funnel-typo", FUNNEL, {"metric_type": "FUNNELS"}, "metric_type"),
]


def definition(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {k: v for k, v in merged.items() if v is not None}


def test_corpus_is_large_and_distinct() -> None:
    assert len(CORPUS) >= 60
    assert len({name for name, *_ in CORPUS}) == len(CORPUS)
    fields = {field.split("[")[0].split(".")[0] for *_, field in CORPUS}
    assert {
        "lookback_days",
        "compare_to",
        "steps",
        "conversion_window_days",
        "counted_by",
        "cohort_event",
        "return_event",
        "period",
        "periods",
    } <= fields


@pytest.mark.parametrize(
    ("base", "overrides", "field"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "spark"])
def test_compile_rejects(
    base: dict[str, Any], overrides: dict[str, Any], field: str, dialect: str
) -> None:
    hostile = definition(base, overrides)
    period = (date(2025, 1, 6), date(2025, 2, 3))
    for start, end in ((None, None), period):
        with pytest.raises(MetricValidationError) as caught:
            compile_metric(hostile, dialect, start, end, week_start_index=0)
        assert caught.value.field.startswith(field), str(caught.value)
        assert str(caught.value).startswith(caught.value.field)


def test_valid_journeys_do_reach_the_database(
    recorded: tuple[CustomMetricService, RecordingRaw],
) -> None:
    service, recorder = recorded
    service.test_metric_definition(FUNNEL, "2025-01-06", "2025-02-03")
    service.test_metric_definition(RETENTION, "2025-01-06", "2025-02-03")
    assert sum("stg_events" in str(s) for s in recorder.statements) >= 2


def test_nothing_reaches_the_database(recorded: tuple[CustomMetricService, RecordingRaw]) -> None:
    service, recorder = recorded
    for name, base, overrides, _ in CORPUS:
        hostile = definition(base, overrides)
        for action in (
            lambda h=hostile: service.create_definition(h),
            lambda h=hostile: service.test_metric_definition(h, "2025-01-06", "2025-02-03"),
            lambda h=hostile: service.estimate_cost(h, "2025-01-06", "2025-02-03"),
        ):
            with pytest.raises(MetricValidationError):
                action()
        assert recorder.statements == [], f"{name} reached the database: {recorder.statements}"


@pytest.mark.parametrize(
    ("base", "start", "end", "field"),
    [
        (FUNNEL, "2025-01-06", "9999-12-30", "end"),  # the window would pass 9999-12-31
        (COUNT | {"lookback_days": 366}, "0001-01-01", "0001-01-05", "lookback_days"),
        (COUNT | {"compare_to": "previous_period"}, "0001-01-01", "0001-01-03", "start"),
        (RETENTION | {"period": "month"}, "9999-12-01", "9999-12-31", "end"),
        (RETENTION, "2025-01-07", "2025-01-12", "start"),  # no week starts inside
        (COUNT, "2025-01-06T10:00:00", "2025-01-08", "start"),  # series take whole days
    ],
    ids=[
        "funnel-window-9999",
        "lookback-year-1",
        "compare-year-1",
        "cohort-9999",
        "no-cohort",
        "partial-day",
    ],
)
def test_hostile_periods_are_refused(
    base: dict[str, Any], start: str, end: str, field: str
) -> None:
    for dialect in ("postgres", "duckdb", "spark"):
        with pytest.raises(MetricValidationError) as caught:
            compile_metric(base, dialect, start, end, week_start_index=0)
        assert caught.value.field == field, str(caught.value)
