"""Property tests of the validator and compiler: whatever definition, fragment or period comes
in, the result is a compiled query or a MetricValidationError, never another exception.

Examples are generated from the project's own vocabulary (columns, functions, operators, LIKE
patterns, exponent literals, time zones near the ends of the calendar) mixed with arbitrary
text; the number of examples is bounded and the run is reproducible (derandomized).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_metrics import CompiledMetric, MetricValidationError, compile_metric
from custom_metrics.definitions import load_definitions_text
from warehouse import Warehouse

BOUNDED = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

WORDS = [
    *("event_id", "occurred_at", "event_date", "event_type", "actor_id", "entity_type"),
    *("entity_id", "revenue_cents", "properties", "properties.tier", "ingested_at"),
    *("metric_date", "event_count", "week_start", "password", "pg_catalog.pg_user"),
    *("count", "sum", "avg", "min", "max", "count_if", "percentile", "coalesce", "nullif"),
    *("abs", "round", "floor", "ceil", "lower", "upper", "length", "greatest", "least"),
    *("pg_sleep", "read_csv", "now", "cast", "case", "when", "then", "else", "end", "distinct"),
    *("and", "or", "not", "in", "is", "null", "between", "like", "ilike", "true", "false"),
    *("select", "from", "union", "interval", "over", "filter", "escape", "*"),
    *("(", ")", "(", ")", ",", "+", "-", "/", "=", "<>", "<", ">=", "!=", "||", "::", ";"),
    *("0", "1", "42", "-7", "1e3", "2.5e2", "1e-3", "1e400", "0.5", "9" * 40, "1e-31"),
    *("'a'", "'%a%'", "'_%_%_%b'", "'2025-01-01'", "'0001-01-01T00:00:00+05:00'", "''''"),
    *("'" + "a" * 120 + "'", "'%'", "'a_c%'", "--", "/*", "$1", "%s", "\u200b", "\u0435"),
]

METRIC_TYPES = ("COUNT", "SUM", "AVERAGE", "DISTINCT_COUNT", "PERCENTILE", "RATIO", "MAX", "MIN")

fragment = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join),
    st.text(max_size=40),
    st.sampled_from(
        [
            "count(*)",
            "revenue_cents",
            "sum(revenue_cents) / count(distinct actor_id)",
            "count_if(event_type = 'purchase') / count(*)",
            "percentile(revenue_cents, 0.9)",
            "case when revenue_cents > 0 then revenue_cents end",
            "event_type like '%click%'",
            "occurred_at >= '2025-01-01'",
        ]
    ),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(),
    st.sampled_from(["2025-01-01", "0001-01-01T01:00:00+05:00", "yesterday", "\x00"]),
)
zones = st.sampled_from([None, UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=-5))])
bound = st.one_of(
    st.none(),
    st.dates(),
    st.builds(
        lambda d, h, z: datetime(d.year, d.month, d.day, h, tzinfo=z),
        st.dates(),
        st.integers(0, 23),
        zones,
    ),
    st.sampled_from(["2025-01-01", "9999-12-31T23:00:00-05:00", "nope", 5, [1], {}]),
)
definition = st.fixed_dictionaries(
    {
        "name": st.one_of(st.just("p"), st.text(max_size=5), st.integers()),
        "metric_type": st.sampled_from([*METRIC_TYPES, "count", "MEDIAN", 1]),
        "data_source": st.sampled_from(
            ["events", "daily_metrics", "weekly_metrics", "monthly_metrics", "pg_user"]
        ),
        "calculation_formula": fragment,
    },
    optional={
        "where": st.one_of(fragment, st.none()),
        "dimensions": st.lists(st.sampled_from(WORDS[:16]), max_size=3),
        "filters": st.dictionaries(st.sampled_from(WORDS[:16]), scalar, max_size=3),
        "percentile": st.one_of(st.floats(), st.just("0.5"), st.none()),
        "lookback_days": st.one_of(st.integers(-5, 400), st.booleans(), st.just("30")),
        "time_grain": st.sampled_from(["day", "week", "month", "hour", None]),
        "visibility": st.sampled_from(["PRIVATE", "PUBLIC", "EVERYONE"]),
        "owner": st.one_of(st.text(max_size=120), st.none()),
    },
)


def _compile_or_reject(spec: Any, dialect: str, start: Any = None, end: Any = None) -> None:
    try:
        compiled = compile_metric(spec, dialect, start, end, schema="metrics")
    except MetricValidationError as error:
        assert str(error).startswith(error.field), error
        return
    assert isinstance(compiled, CompiledMetric)
    assert ";" not in compiled.sql and compiled.columns[-1] == "value"


@BOUNDED
@given(spec=definition, dialect=st.sampled_from(["postgres", "duckdb"]))
def test_definitions_compile_or_are_rejected(spec: dict[str, Any], dialect: str) -> None:
    _compile_or_reject(spec, dialect)


@BOUNDED
@given(
    formula=fragment,
    where=fragment,
    metric_type=st.sampled_from(["COUNT", "SUM", "MAX", "RATIO", "PERCENTILE"]),
)
def test_fragments_compile_or_are_rejected(formula: str, where: str, metric_type: str) -> None:
    spec = {
        "name": "fragment",
        "metric_type": metric_type,
        "data_source": "events",
        "calculation_formula": formula,
        "where": where,
    }
    for dialect in ("postgres", "duckdb", "spark"):
        _compile_or_reject(spec, dialect)


@BOUNDED
@given(
    start=bound,
    end=bound,
    lookback=st.one_of(st.none(), st.integers(1, 366)),
    source=st.sampled_from(["events", "daily_metrics"]),
)
def test_periods_compile_or_are_rejected(
    start: Any, end: Any, lookback: int | None, source: str
) -> None:
    spec: dict[str, Any] = {
        "name": "period",
        "metric_type": "COUNT",
        "data_source": source,
        "calculation_formula": "*",
    }
    if lookback is not None:
        spec["lookback_days"] = lookback
    _compile_or_reject(spec, "duckdb", start, end)


@BOUNDED
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(
                [
                    "name: a\n",
                    "metric_type: COUNT\n",
                    "data_source: events\n",
                    "calculation_formula: '*'\n",
                    "- ",
                    "[",
                    "]",
                    "{",
                    "}",
                    "&a ",
                    "*a ",
                    "<<: ",
                    "!!python/object:os.system ",
                    "\t",
                    "  ",
                    "definitions:\n",
                    "visibility: PUBLIC\n",
                    "percentile: '0.5'\n",
                    ": ",
                    "'",
                    '"',
                ]
            ),
            max_size=20,
        ).map("".join),
    )
)
def test_yaml_loads_or_is_rejected(text: str) -> None:
    try:
        loaded = load_definitions_text(text, "prop.yml")
    except MetricValidationError as error:
        assert str(error).startswith("prop.yml"), error
        return
    assert all(d.name for d in loaded)


def test_the_calendar_edges_are_in_the_strategy() -> None:
    """The generated bounds reach both ends of the calendar (a sanity check of the strategy)."""
    assert date.min.year == 1 and date.max.year == 9999


# Accepted means it runs: well-typed expressions (numbers, texts, conditions) built from the
# grammar, plus the free mix above, compiled and then executed on both warehouses.
NUMBER_LEAVES = st.sampled_from(
    ["revenue_cents", "1", "0", "-3", "2.5", "1e3", "2.5e2", "1e-3", "length(event_type)", "null"]
)
TEXTS = st.sampled_from(
    ["event_type", "actor_id", "entity_id", "properties.tier", "lower(event_type)", "'a'"]
)
TIMES = st.sampled_from(["event_date", "occurred_at", "ingested_at", "'2025-01-15'", "'a'"])


CONDITIONS = st.recursive(
    st.one_of(
        st.tuples(NUMBER_LEAVES, st.sampled_from(["=", "<>", "<", ">="]), NUMBER_LEAVES).map(
            " ".join
        ),
        st.tuples(
            TEXTS, st.sampled_from(["like", "ilike"]), st.sampled_from(["'%a%'", "'a_%'", "'%k'"])
        ).map(" ".join),
        st.tuples(TEXTS, TEXTS).map(lambda t: f"{t[0]} = {t[1]}"),
        st.tuples(TIMES, st.sampled_from(["<", ">="]), TIMES).map(" ".join),
        st.tuples(TIMES, TIMES, TIMES).map(lambda t: f"{t[0]} between {t[1]} and {t[2]}"),
        st.tuples(NUMBER_LEAVES, st.sampled_from(["is null", "is not null", "in (1, 2.5)"])).map(
            " ".join
        ),
        st.sampled_from(["true", "false"]),
    ),
    lambda c: st.one_of(
        st.tuples(c, st.sampled_from(["and", "or"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        c.map(lambda x: f"not ({x})"),
    ),
    max_leaves=4,
)


def _numbers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(st.sampled_from(["abs", "floor", "ceil", "round", "-"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(
            st.sampled_from(["coalesce", "nullif", "greatest", "least"]), children, children
        ).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(children, st.one_of(st.integers(-3, 3), NUMBER_LEAVES)).map(
            lambda t: f"round({t[0]}, {t[1]})"
        ),
        st.tuples(CONDITIONS, children, children).map(
            lambda t: f"case when {t[0]} then {t[1]} else {t[2]} end"
        ),
    )


NUMBERS = st.recursive(NUMBER_LEAVES, _numbers, max_leaves=5)
TYPED_FORMULAS = st.one_of(
    st.tuples(st.sampled_from(["SUM", "AVERAGE", "MAX", "MIN", "PERCENTILE"]), NUMBERS),
    NUMBERS.map(lambda e: ("SUM", f"sum({e})")),
    NUMBERS.map(lambda e: ("MAX", f"max({e})")),
    CONDITIONS.map(lambda e: ("COUNT", f"count_if({e})")),
    TEXTS.map(lambda e: ("DISTINCT_COUNT", f"count(distinct {e})")),
    st.tuples(NUMBERS, TEXTS).map(lambda t: ("RATIO", f"sum({t[0]}) / count({t[1]})")),
    st.tuples(st.sampled_from(METRIC_TYPES), fragment),
)


@pytest.mark.parametrize("warehouse", ["duck_wh", "pg_wh"])
def test_accepted_definitions_run(warehouse: str, request: pytest.FixtureRequest) -> None:
    wh: Warehouse = request.getfixturevalue(warehouse)
    failures: list[tuple[str, str | None, str]] = []
    ran: list[str] = []

    @BOUNDED
    @given(typed=TYPED_FORMULAS, where=st.one_of(st.none(), CONDITIONS))
    def run(typed: tuple[str, str], where: str | None) -> None:
        metric_type, formula = typed
        spec = {
            "name": "runs",
            "metric_type": metric_type,
            "data_source": "events",
            "calculation_formula": formula,
            "where": where,
            "percentile": 0.5 if metric_type == "PERCENTILE" else None,
        }
        try:
            compiled = compile_metric(spec, wh.dialect, schema=wh.schema)
        except MetricValidationError:
            return
        ran.append(formula)
        try:
            with wh.transaction():
                wh.query(compiled.sql, compiled.params)
        except Exception as error:  # any database error is a definition wrongly accepted
            failures.append((formula, where, str(error).splitlines()[0]))

    run()
    assert len(ran) > 100  # most generated definitions are accepted and really run
    assert failures == [], failures[:5]
