"""A hostile corpus: every input is rejected with MetricValidationError and nothing reaches
the database (checked on real PostgreSQL, DuckDB and Spark connections wrapped by a
recorder)."""

from __future__ import annotations

from typing import Any

import pytest

from custom_metrics import (
    CustomMetricService,
    MetricValidationError,
    compile_metric,
)
from tests.custom_metrics.support import RecordingRaw
from tests.targets import on_every_warehouse

BASE: dict[str, Any] = {
    "name": "hostile",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
}


def _f(formula: str, metric_type: str = "SUM", **extra: Any) -> dict[str, Any]:
    return {"calculation_formula": formula, "metric_type": metric_type, **extra}


# (id, fields overriding BASE, the field the error must name)
CORPUS: list[tuple[str, dict[str, Any], str]] = [
    # stacked statements
    (
        "stacked-formula",
        _f("count(*); drop table metrics.stg_events", "COUNT"),
        "calculation_formula",
    ),
    ("stacked-select", _f("revenue_cents; select pg_sleep(10)"), "calculation_formula"),
    ("stacked-where", {"where": "1=1; delete from metrics.stg_events"}, "where"),
    ("fullwidth-semicolon", _f("revenue_cents\uff1b drop table x"), "calculation_formula"),
    # comments
    ("comment-dash", _f("revenue_cents -- comment"), "calculation_formula"),
    ("comment-block", _f("revenue_cents /* c */"), "calculation_formula"),
    ("comment-hash", _f("revenue_cents # mysql comment"), "calculation_formula"),
    ("comment-in-where", {"where": "event_type = 'a' -- ' and true"}, "where"),
    ("comment-open-only", {"where": "event_type = 'a' /*"}, "where"),
    # UNION and subqueries into catalogs
    ("union", _f("revenue_cents union select 1"), "calculation_formula"),
    ("union-where", {"where": "event_type = 'x' union all select usename from pg_user"}, "where"),
    ("subquery-pg-catalog", _f("(select count(*) from pg_catalog.pg_user)"), "calculation_formula"),
    (
        "subquery-information-schema",
        _f("(select max(length(table_name)) from information_schema.tables)"),
        "calculation_formula",
    ),
    ("subquery-duckdb-tables", _f("(select count(*) from duckdb_tables())"), "calculation_formula"),
    ("exists-subquery", {"where": "event_type = 'a' or exists (select 1 from pg_user)"}, "where"),
    (
        "in-subquery",
        {"where": "event_type in (select event_type from metrics.stg_events)"},
        "where",
    ),
    ("in-non-literal", {"where": "event_type in ('a', event_id)"}, "where"),
    # file and network functions
    ("pg-read-file", _f("pg_read_file('/etc/passwd')", "COUNT"), "calculation_formula"),
    ("pg-read-file-nested", _f("length(pg_read_file('/etc/passwd'))"), "calculation_formula"),
    ("lo-import", _f("lo_import('/etc/passwd')"), "calculation_formula"),
    ("read-csv", _f("read_csv('/etc/passwd')", "COUNT"), "calculation_formula"),
    (
        "read-parquet",
        _f("(select count(*) from read_parquet('s3://bucket/x.parquet'))"),
        "calculation_formula",
    ),
    ("read-text-http", _f("read_text('http://evil.example/x')", "COUNT"), "calculation_formula"),
    ("httpfs-load", _f("load httpfs", "COUNT"), "calculation_formula"),
    ("httpfs-install", _f("install httpfs", "COUNT"), "calculation_formula"),
    ("dblink", _f("dblink('host=evil', 'select 1')", "COUNT"), "calculation_formula"),
    ("copy-to", _f("copy (select 1) to '/tmp/x'", "COUNT"), "calculation_formula"),
    ("copy-where", {"where": "copy stg_events to '/tmp/x'"}, "where"),
    (
        "query-to-xml",
        _f("query_to_xml('select 1', true, true, '')", "COUNT"),
        "calculation_formula",
    ),
    # settings, sleeps, DO blocks, catalogs through functions
    (
        "set-config",
        _f("set_config('statement_timeout', '0', false)", "COUNT"),
        "calculation_formula",
    ),
    ("current-setting", _f("current_setting('data_directory')", "COUNT"), "calculation_formula"),
    ("pg-sleep", _f("pg_sleep(10)", "COUNT"), "calculation_formula"),
    ("pg-sleep-where", {"where": "pg_sleep(5) is not null"}, "where"),
    ("current-user", {"where": "event_type = current_user"}, "where"),
    ("version", _f("version()", "COUNT"), "calculation_formula"),
    ("do-block", _f("do $$ begin perform pg_sleep(1); end $$", "COUNT"), "calculation_formula"),
    ("generate-series", _f("generate_series(1, 1000000000)", "COUNT"), "calculation_formula"),
    ("chr", {"where": "event_type = chr(65)"}, "where"),
    # casts, windows, JSON operators, regex
    ("cast-colons", _f("revenue_cents::text", "MAX"), "calculation_formula"),
    ("cast-function", _f("cast(revenue_cents as text)", "MAX"), "calculation_formula"),
    ("window", _f("sum(revenue_cents) over (partition by actor_id)"), "calculation_formula"),
    ("row-number", _f("row_number() over ()", "COUNT"), "calculation_formula"),
    ("json-arrow", _f("properties -> 'a'", "COUNT"), "calculation_formula"),
    ("json-double-arrow", {"where": "properties ->> 'a' = 'b'"}, "where"),
    ("json-path-hash", {"where": "properties #>> '{a}' = 'b'"}, "where"),
    ("regex-tilde", {"where": "event_type ~ 'x'"}, "where"),
    ("concat", _f("upper('x') || 'y'", "COUNT"), "calculation_formula"),
    ("interval", {"where": "occurred_at > now() - interval '1 day'"}, "where"),
    ("like-escape", {"where": "event_type like 'a' escape '!'"}, "where"),
    # placeholders and quoting tricks
    ("dollar-quote", _f("$$ evil $$", "COUNT"), "calculation_formula"),
    ("dollar-tag", {"where": "true or event_type = $tag$x$tag$"}, "where"),
    ("placeholder-dollar-1", _f("$1"), "calculation_formula"),
    ("placeholder-question", _f("?"), "calculation_formula"),
    ("placeholder-percent-s", _f("%s"), "calculation_formula"),
    ("placeholder-pyformat", _f("%(x)s"), "calculation_formula"),
    ("placeholder-colon", _f(":name"), "calculation_formula"),
    ("backslash-escape", _f("e'\\x41'", "COUNT"), "calculation_formula"),
    ("quoted-identifier", _f('"revenue_cents"'), "calculation_formula"),
    ("quoted-catalog", {"where": '"pg_catalog"."pg_user" is null'}, "where"),
    # unicode tricks
    ("nul", _f("revenue_cents\x00"), "calculation_formula"),
    ("homoglyph-cyrillic-e", _f("r\u0435venue_cents"), "calculation_formula"),
    ("zero-width-space", _f("revenue\u200b_cents"), "calculation_formula"),
    ("rtl-override", _f("revenue_cents\u202e"), "calculation_formula"),
    ("fullwidth-letters", _f("\uff52evenue_cents"), "calculation_formula"),
    ("homoglyph-json-key", {"dimensions": ["properties.industr\u0443"]}, "dimensions[0]"),
    ("nbsp", {"where": "event_type\u00a0= 'a'"}, "where"),
    # size
    ("very-long", _f("revenue_cents + " * 200 + "1"), "calculation_formula"),
    ("deep-parens", _f("(" * 200 + "revenue_cents" + ")" * 200), "calculation_formula"),
    ("deep-not", _f("not " * 400 + "true", "COUNT"), "calculation_formula"),
    ("deep-ast", _f("revenue_cents" + " + 1" * 120), "calculation_formula"),
    ("unbalanced", _f("sum(revenue_cents"), "calculation_formula"),
    # columns and tables not on the allowlist
    ("unknown-column", _f("password"), "calculation_formula"),
    ("qualified-column", _f("stg_events.revenue_cents"), "calculation_formula"),
    ("schema-qualified", _f("metrics.stg_events.revenue_cents"), "calculation_formula"),
    ("bare-json-column", _f("properties", "COUNT"), "calculation_formula"),
    ("nested-json-path", _f("properties.a.b", "COUNT"), "calculation_formula"),
    (
        "json-on-rollup",
        {"data_source": "daily_metrics", "dimensions": ["properties.a"]},
        "dimensions[0]",
    ),
    # metric type against formula
    ("empty-formula", _f(""), "calculation_formula"),
    ("star-for-sum", _f("*"), "calculation_formula"),
    ("aggregate-mismatch", _f("sum(revenue_cents)", "COUNT"), "calculation_formula"),
    ("count-distinct-star", _f("count(distinct *)", "DISTINCT_COUNT"), "calculation_formula"),
    ("sum-of-text", _f("event_type", "SUM"), "calculation_formula"),
    ("nested-aggregate", _f("sum(count(*)) / count(*)", "RATIO"), "calculation_formula"),
    ("ratio-without-division", _f("count(*)", "RATIO"), "calculation_formula"),
    ("ratio-bare-column", _f("revenue_cents / count(*)", "RATIO"), "calculation_formula"),
    ("aggregate-in-where", {"where": "count(*) > 1"}, "where"),
    ("percentile-1.5", _f("revenue_cents", "PERCENTILE", percentile=1.5), "percentile"),
    (
        "percentile-inline-1.5",
        _f("percentile(revenue_cents, 1.5)", "PERCENTILE"),
        "calculation_formula",
    ),
    ("percentile-zero", _f("percentile(revenue_cents, 0)", "PERCENTILE"), "calculation_formula"),
    ("percentile-missing", _f("revenue_cents", "PERCENTILE"), "percentile"),
    ("percentile-on-count", _f("revenue_cents", "SUM", percentile=0.5), "definition"),
    ("json-vs-number", {"where": "properties.seats > 5"}, "where"),
    ("json-arithmetic", _f("properties.seats * 2", "MAX"), "calculation_formula"),
    ("json-sum", _f("sum(properties.seats)"), "calculation_formula"),
    ("bad-date", {"where": "occurred_at >= 'not a date'"}, "where"),
    # enums and allowlisted names
    ("metric-type-injection", {"metric_type": "COUNT; DROP TABLE x"}, "metric_type"),
    ("metric-type-unknown", {"metric_type": "MEDIAN"}, "metric_type"),
    ("source-catalog", {"data_source": "pg_catalog.pg_user"}, "data_source"),
    ("source-injection", {"data_source": "events; drop table x"}, "data_source"),
    ("source-information-schema", {"data_source": "information_schema.tables"}, "data_source"),
    ("source-raw-table", {"data_source": "stg_events"}, "data_source"),
    ("time-grain", {"time_grain": "hour"}, "time_grain"),
    ("lookback-negative", {"lookback_days": -5}, "lookback_days"),
    ("visibility", {"visibility": "EVERYONE"}, "visibility"),
    ("extra-field", {"sql": "select 1"}, "sql"),
    # dimensions
    ("dimension-injection", {"dimensions": ["event_type; drop table x"]}, "dimensions[0]"),
    ("dimension-json-quote", {"dimensions": ["properties.a'b"]}, "dimensions[0]"),
    ("dimension-catalog", {"dimensions": ["pg_catalog.pg_user"]}, "dimensions[0]"),
    ("dimension-space", {"dimensions": ["properties.a b"]}, "dimensions[0]"),
    ("dimension-unknown", {"dimensions": ["password"]}, "dimensions[0]"),
    ("dimension-number", {"dimensions": ["1"]}, "dimensions[0]"),
    ("dimension-expression", {"dimensions": ["lower(event_type)"]}, "dimensions[0]"),
    ("dimension-duplicate", {"dimensions": ["event_type", "event_type"]}, "dimensions[1]"),
    # filters: keys and values
    ("filter-key-injection", {"filters": {"event_type = 'x' or 1=1 --": "a"}}, "filters"),
    ("filter-json-quote", {"filters": {"properties.a'b": "x"}}, "filters"),
    ("filter-empty-key", {"filters": {"properties.": "x"}}, "filters"),
    ("filter-operator-object", {"filters": {"event_type": {"$ne": 1}}}, "filters"),
    ("filter-nul-value", {"filters": {"event_type": "a\x00b"}}, "filters"),
    ("filter-empty-list", {"filters": {"event_type": []}}, "filters"),
    ("filter-null-in-list", {"filters": {"event_type": ["a", None]}}, "filters"),
    ("filter-bad-date", {"filters": {"event_date": "yesterday"}}, "filters"),
    ("filter-text-for-number", {"filters": {"revenue_cents": "1 or 1=1"}}, "filters"),
    ("filter-bool-for-text", {"filters": {"event_type": True}}, "filters"),
    # free text fields
    ("name-nul", {"name": "a\x00b"}, "name"),
    ("name-too-long", {"name": "a" * 500}, "name"),
    ("description-rtl", {"description": "fine\u202eenif"}, "description"),
    ("owner-zero-width", {"owner": "admin\u200b"}, "owner"),
]

_SLOW = "_%" * 10 + "b"
# Cost: patterns DuckDB matches in exponential time, and literals too large to bind exactly.
COST: list[tuple[str, dict[str, Any], str]] = [
    ("like-11-pairs-constant", {"where": "'" + "a" * 44 + "' like '" + "_%" * 11 + "b'"}, "where"),
    ("like-10-pairs-per-row", {"where": f"event_id like '{_SLOW}'"}, "where"),
    (
        "like-count-if-issue",
        _f(f"count_if(coalesce(nullif(event_id, event_id), '{'a' * 40}') like '{_SLOW}')", "COUNT"),
        "calculation_formula",
    ),
    ("ilike-three-percents", {"where": "event_type ilike '%a%b%c'"}, "where"),
    ("ilike-underscore-pairs", {"where": "event_type ilike '_%_%_%'"}, "where"),
    ("like-underscore-two-percents", {"where": "event_type like '%a_%b'"}, "where"),
    ("like-long-pattern", {"where": "event_type like '" + "a" * 101 + "'"}, "where"),
    ("like-eleven-percents", {"where": "event_type like '" + "%a" * 11 + "'"}, "where"),
    ("like-column-pattern", {"where": "event_type like entity_id"}, "where"),
    ("like-function-pattern", {"where": "event_type like lower('a%')"}, "where"),
    ("like-paren-column-pattern", {"where": "event_type like (entity_id)"}, "where"),
    ("like-null-pattern", {"where": "event_type like null"}, "where"),
    ("like-number-pattern", {"where": "event_type like 5"}, "where"),
    ("not-like-expensive", {"where": "not event_id like '_%_%_%'"}, "where"),
    ("ilike-in-count-if", _f("count_if(event_type ilike '%a%b%')", "COUNT"), "calculation_formula"),
    (
        "like-in-case",
        _f(f"case when event_id like '{_SLOW}' then revenue_cents else 0 end"),
        "calculation_formula",
    ),
    ("like-json-key", {"where": "properties.tier like '%_%_%_%'"}, "where"),
    ("like-in-coalesce", {"where": "coalesce(event_type like '%_%_%', false)"}, "where"),
    ("like-long-subject", {"where": "'" + "a" * 300 + "' like 'a%'"}, "where"),
    ("is-column", {"where": "entity_id is entity_id"}, "where"),
    ("is-number", {"where": "revenue_cents is 5"}, "where"),
    ("round-fraction-digits", _f("round(revenue_cents, 1e-3)"), "calculation_formula"),
    ("round-column-digits", _f("round(revenue_cents, revenue_cents)"), "calculation_formula"),
    ("round-31-digits", _f("round(revenue_cents, 31)"), "calculation_formula"),
    ("text-between-timestamps", {"where": "'a' between '2025-01-01' and occurred_at"}, "where"),
    ("text-vs-coalesced-time", {"where": "coalesce(occurred_at, ingested_at) > 'soon'"}, "where"),
    ("ilike-31-with-percent", {"where": "event_type ilike '%" + "a" * 30 + "'"}, "where"),
    ("like-31-with-underscore", {"where": "entity_id like '%" + "a" * 28 + "_b'"}, "where"),
    ("number-1e40", _f("revenue_cents * 1e40"), "calculation_formula"),
    ("number-1e-31", _f("revenue_cents * 1e-31"), "calculation_formula"),
    ("number-39-digits", _f("revenue_cents * " + "9" * 39), "calculation_formula"),
    ("number-huge-exponent", _f("revenue_cents * 1e999999999"), "calculation_formula"),
    ("number-38-decimals", _f("revenue_cents * 0." + "1" * 38), "calculation_formula"),
    ("number-1e308", _f("revenue_cents + 1e308"), "calculation_formula"),
    ("number-negative-1e40", _f("revenue_cents * -1e40"), "calculation_formula"),
    ("number-round-digits", _f("round(revenue_cents, 1e40)"), "calculation_formula"),
    ("number-in-list", {"where": "revenue_cents in (1, 1e50)"}, "where"),
    ("text-201-chars", {"where": "event_type = '" + "x" * 201 + "'"}, "where"),
    ("text-in-list", {"where": "event_type in ('" + "x" * 201 + "')"}, "where"),
    ("number-round-negative-digits", _f("round(revenue_cents, -1e40)"), "calculation_formula"),
    ("filter-int-beyond-64-bits", {"filters": {"revenue_cents": 2**64}}, "filters"),
    ("filter-int-list-beyond-64-bits", {"filters": {"revenue_cents": [1, -(2**70)]}}, "filters"),
    ("filter-nan", {"filters": {"revenue_cents": float("nan")}}, "filters"),
    ("filter-inf", {"filters": {"revenue_cents": float("inf")}}, "filters"),
    ("filter-text-501", {"filters": {"event_type": "x" * 501}}, "filters"),
    ("filter-list-201", {"filters": {"event_type": ["x"] * 201}}, "filters"),
]

# Value kinds: formulas that would only fail inside the database, or store a non-number.
KINDS: list[tuple[str, dict[str, Any], str]] = [
    ("max-of-text", _f("event_type", "MAX"), "calculation_formula"),
    ("min-of-date", _f("metric_date", "MIN", data_source="daily_metrics"), "calculation_formula"),
    ("max-of-timestamp", _f("occurred_at", "MAX"), "calculation_formula"),
    ("max-wrapped-text", _f("max(lower(entity_id))", "MAX"), "calculation_formula"),
    ("sum-of-condition", _f("event_type = 'a'"), "calculation_formula"),
    ("average-of-text", _f("lower(event_type)", "AVERAGE"), "calculation_formula"),
    ("percentile-of-text", _f("percentile(event_type, 0.5)", "PERCENTILE"), "calculation_formula"),
    ("ratio-sum-of-text", _f("sum(event_type) / count(*)", "RATIO"), "calculation_formula"),
    ("ratio-max-of-text", _f("max(event_type) / count(*)", "RATIO"), "calculation_formula"),
    ("where-number", {"where": "revenue_cents"}, "where"),
    ("where-text", {"where": "event_type"}, "where"),
    ("where-text-equals-number", {"where": "event_type = 5"}, "where"),
    ("where-like-number", {"where": "revenue_cents like '1%'"}, "where"),
    ("add-text", _f("revenue_cents + event_type"), "calculation_formula"),
    ("length-of-number", _f("length(revenue_cents)"), "calculation_formula"),
    ("lower-of-number", _f("lower(revenue_cents)", "MAX"), "calculation_formula"),
    (
        "case-mixed-branches",
        _f("case when revenue_cents > 0 then revenue_cents else event_type end"),
        "calculation_formula",
    ),
    ("coalesce-mixed", _f("coalesce(revenue_cents, 'none')"), "calculation_formula"),
    ("in-mixed", {"where": "revenue_cents in ('a', 'b')"}, "where"),
    ("between-mixed", {"where": "revenue_cents between 'a' and 'b'"}, "where"),
    ("and-of-text", {"where": "event_type and true"}, "where"),
    ("not-of-number", {"where": "not revenue_cents"}, "where"),
    ("count-if-number", _f("count_if(revenue_cents)", "COUNT"), "calculation_formula"),
    ("date-vs-number", {"where": "event_date > 5"}, "where"),
    ("greatest-mixed", _f("greatest(revenue_cents, event_type)", "MAX"), "calculation_formula"),
    ("max-of-json-key", _f("properties.tier", "MAX"), "calculation_formula"),
    ("case-when-number", _f("case when revenue_cents then 1 end"), "calculation_formula"),
    ("neg-of-text", _f("-event_type"), "calculation_formula"),
]

# Formulas that read no column at all (a constant is not a metric).
NO_COLUMN: list[tuple[str, dict[str, Any], str]] = [
    ("sum-constant", _f("42"), "calculation_formula"),
    ("sum-of-constant", _f("sum(42)"), "calculation_formula"),
    ("average-constant", _f("1 + 2", "AVERAGE"), "calculation_formula"),
    ("count-one", _f("1", "COUNT"), "calculation_formula"),
    ("count-null", _f("null", "COUNT"), "calculation_formula"),
    ("count-if-true", _f("count_if(true)", "COUNT"), "calculation_formula"),
    ("distinct-constant", _f("count(distinct 3)", "DISTINCT_COUNT"), "calculation_formula"),
    ("percentile-constant", _f("percentile(5, 0.5)", "PERCENTILE"), "calculation_formula"),
    ("ratio-constants", _f("sum(1) / sum(2)", "RATIO"), "calculation_formula"),
    ("max-negative-constant", _f("-7", "MAX"), "calculation_formula"),
    ("min-text-constant", _f("'abc'", "MIN"), "calculation_formula"),
    ("case-constant", _f("case when true then 1 else 0 end"), "calculation_formula"),
]

# Shapes: no text is turned into a number or a boolean; names and sizes stay in bounds.
SHAPES: list[tuple[str, dict[str, Any], str]] = [
    ("percentile-as-text", _f("revenue_cents", "PERCENTILE", percentile="0.5"), "percentile"),
    ("lookback-true", {"lookback_days": True}, "lookback_days"),
    ("lookback-text", {"lookback_days": "30"}, "lookback_days"),
    ("lookback-367", {"lookback_days": 367}, "lookback_days"),
    ("lookback-float", {"lookback_days": 30.0}, "lookback_days"),
    ("active-as-text", {"is_active": "yes"}, "is_active"),
    ("active-as-number", {"is_active": 1}, "is_active"),
    ("name-as-number", {"name": 123}, "name"),
    ("formula-as-number", {"calculation_formula": 1}, "calculation_formula"),
    ("where-as-bool", {"where": True}, "where"),
    ("dimension-as-number", {"dimensions": [1]}, "dimensions"),
    ("owner-as-number", {"owner": 7}, "owner"),
    ("metric-type-as-number", {"metric_type": 1}, "metric_type"),
    ("visibility-as-bool", {"visibility": True}, "visibility"),
    ("time-grain-as-number", {"time_grain": 7}, "time_grain"),
    ("source-as-list", {"data_source": ["events"]}, "data_source"),
    ("owner-101", {"owner": "o" * 101}, "owner"),
    ("team-zero-width", {"team": "red\u200b"}, "team"),
    ("organization-nul", {"organization": "acme\x00"}, "organization"),
    ("owner-rtl", {"owner": "bob\u202e"}, "owner"),
    ("filter-key-number", {"filters": {1: "a"}}, "filters"),
    ("filter-nested-list", {"filters": {"event_type": [["a"]]}}, "filters"),
    ("description-nul", {"description": "a\x00b"}, "description"),
    ("name-zero-width", {"name": "re\u200bvenue"}, "name"),
    ("nine-dimensions", {"dimensions": ["event_type"] * 9}, "dimensions"),
    ("twenty-one-filters", {"filters": {f"properties.k{i}": "x" for i in range(21)}}, "filters"),
    ("where-empty", {"where": ""}, "where"),
    ("where-spaces", {"where": "   "}, "where"),
    ("formula-spaces", _f("   "), "calculation_formula"),
]

CORPUS += COST + KINDS + NO_COLUMN + SHAPES


def definition(overrides: dict[str, Any]) -> dict[str, Any]:
    return {**BASE, **overrides}


def test_corpus_is_large_and_distinct() -> None:
    assert len(CORPUS) >= 230
    assert len({name for name, _, _ in CORPUS}) == len(CORPUS)
    fields = {field.split("[")[0].split(".")[0] for _, _, field in CORPUS}
    assert {"calculation_formula", "where", "dimensions", "filters", "metric_type"} <= fields
    assert {"data_source", "percentile", "name", "time_grain", "visibility"} <= fields


@pytest.mark.parametrize(
    ("overrides", "field"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "spark"])
def test_compile_rejects(overrides: dict[str, Any], field: str, dialect: str) -> None:
    with pytest.raises(MetricValidationError) as caught:
        compile_metric(definition(overrides), dialect)
    assert caught.value.field.startswith(field), str(caught.value)
    assert str(caught.value).startswith(caught.value.field)


@on_every_warehouse("wh")
def test_recorder_sees_valid_work(recorded: tuple[CustomMetricService, RecordingRaw]) -> None:
    service, recorder = recorded
    run = service.test_metric_definition(BASE, "2025-01-01", "2025-01-08")
    if service.warehouse.dialect == "spark":  # no job audit log there: nothing proves freshness
        assert run.answered_from == "events" and "audit log" in (run.fallback_reason or "")
        return
    assert run.answered_from == "daily_metrics"  # a whole-day count is read from the rollup
    assert any("daily_metrics" in str(s) for s in recorder.statements)


@on_every_warehouse("wh")
def test_nothing_reaches_the_database(recorded: tuple[CustomMetricService, RecordingRaw]) -> None:
    service, recorder = recorded
    for name, overrides, _ in CORPUS:
        hostile = definition(overrides)
        for action in (
            lambda h=hostile: service.create_definition(h),
            lambda h=hostile: service.test_metric_definition(h, "2025-01-01", "2025-01-08"),
            lambda h=hostile: service.estimate_cost(h),
        ):
            with pytest.raises(MetricValidationError):
                action()
        assert recorder.statements == [], f"{name} reached the database: {recorder.statements}"
