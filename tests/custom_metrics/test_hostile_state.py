"""The hostile corpus beyond single definitions, on DuckDB and PostgreSQL: damaged stored rows,
reads of other users' versions, periods, YAML and configuration. Every input is refused
clearly, and none breaks what others can read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from custom_metrics import (
    SYSTEM,
    CustomMetricService,
    MetricNotFoundError,
    MetricPermissionError,
    MetricValidationError,
    Principal,
    calculate_all_active,
    compile_metric,
)
from custom_metrics.definitions import load_definitions_text
from custom_metrics.identity import IdentityError, refuse_identity_claims
from tests.custom_metrics.test_hostile import CORPUS
from warehouse import Warehouse, WarehouseConfig, WarehouseConfigError

ALICE = Principal("alice", "red", "acme")
BOB = Principal("bob", "red", "acme")
MALLORY = Principal("mallory", "blue", "globex")
BASE: dict[str, Any] = {
    "name": "hostile state",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
}

# (id, column, stored value): a stored row damaged by hand or by an older version.
STORED: list[tuple[str, str, Any]] = [
    ("owner-150-chars", "owner", "x" * 150),
    ("owner-zero-width", "owner", "alice\u200b"),
    ("team-control", "team", "red\x07"),
    ("visibility-unknown", "visibility", "EVERYONE"),
    ("metric-type-unknown", "metric_type", "MEDIAN"),
    ("source-catalog", "data_source", "pg_catalog.pg_user"),
    ("filters-not-json", "filters", "{not json"),
    ("filters-not-a-mapping", "filters", "[1, 2]"),
    ("dimensions-not-a-list", "dimensions", '"event_type"'),
    ("percentile-on-count", "percentile", 5.0),
    ("where-forbidden-function", "where_clause", "pg_sleep(1) > 0"),
    ("formula-stacked", "calculation_formula", "count(*); drop table x"),
    ("where-expensive-like", "where_clause", "event_id like '" + "_%" * 10 + "b'"),
    ("lookback-zero", "lookback_days", 0),
    ("time-grain-hour", "time_grain", "hour"),
    ("name-empty", "name", ""),
    ("formula-max-of-text", "calculation_formula", "max(event_type)"),
    ("where-number", "where_clause", "revenue_cents"),
]


@pytest.fixture()
def good_and_victim(wh: Warehouse) -> Iterator[tuple[str, str]]:
    service = CustomMetricService(wh, ALICE)
    good = service.create_definition({**BASE, "visibility": "PUBLIC"}).definition_id
    victim = service.create_definition({**BASE, "visibility": "PUBLIC"}).definition_id
    yield good, victim
    table = f"{wh.schema}.custom_metric_definitions"
    wh.execute(f"delete from {table} where definition_id = {wh.param('id')}", {"id": victim})
    CustomMetricService(wh, ALICE, ensure_tables=False).deactivate_definition(good)


@pytest.mark.parametrize(("column", "value"), [s[1:] for s in STORED], ids=[s[0] for s in STORED])
def test_damaged_stored_row(
    column: str, value: Any, wh: Warehouse, good_and_victim: tuple[str, str]
) -> None:
    good, victim = good_and_victim
    table = f"{wh.schema}.custom_metric_definitions"
    wh.execute(
        f"update {table} set {column} = {wh.param('v')} where definition_id = {wh.param('id')}",
        {"v": value, "id": victim},
    )
    for who in (ALICE, BOB, MALLORY, SYSTEM):
        service = CustomMetricService(wh, who, ensure_tables=False)
        listed = {s.definition_id for s in service.list_definitions()}
        assert good in listed
        assert service.get_definition(good).definition_id == good
    results = {r.definition_id: r for r in calculate_all_active(wh, "2025-01-01", "2025-01-02")}
    assert results[good].status == "SUCCESS"
    if victim in results:  # readable but no longer accepted: refused, never run
        assert results[victim].status == "FAILED"
    system = CustomMetricService(wh, SYSTEM, ensure_tables=False)
    with pytest.raises(MetricNotFoundError) if victim not in results else _no_error():
        assert [v for v in system.values(victim)] == []


class _no_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# (id, what mallory or bob tries on alice's definitions, the error expected)
ACCESS: list[tuple[str, Callable[[CustomMetricService, str], Any], type[Exception]]] = [
    ("get-private", lambda s, i: s.get_definition(i), MetricNotFoundError),
    ("get-private-v1", lambda s, i: s.get_definition(i, version=1), MetricNotFoundError),
    ("get-version-text", lambda s, i: s.get_definition(i, version="1"), MetricValidationError),
    ("get-version-negative", lambda s, i: s.get_definition(i, version=-1), MetricNotFoundError),
    ("get-version-huge", lambda s, i: s.get_definition(i, version=2**40), MetricNotFoundError),
    ("history", lambda s, i: s.history(i), MetricNotFoundError),
    ("values", lambda s, i: s.values(i), MetricNotFoundError),
    ("calculations", lambda s, i: s.calculations(i), MetricNotFoundError),
    ("usage", lambda s, i: s.usage(i), MetricNotFoundError),
    ("update", lambda s, i: s.update_definition(i, {"description": "x"}), MetricNotFoundError),
    ("deactivate", lambda s, i: s.deactivate_definition(i), MetricNotFoundError),
    (
        "calculate",
        lambda s, i: s.calculate_metric(i, "2025-01-01", "2025-01-02"),
        MetricNotFoundError,
    ),
    ("id-injection", lambda s, i: s.get_definition(i + "' or '1'='1"), MetricNotFoundError),
    ("id-wildcard", lambda s, i: s.get_definition("%"), MetricNotFoundError),
]


@pytest.fixture()
def alices_private(wh: Warehouse) -> str:
    """Alice's definition: PRIVATE at version 1, then version 2 still PRIVATE."""
    service = CustomMetricService(wh, ALICE)
    stored = service.create_definition({**BASE, "where": "actor_id = 'u7'"})
    service.update_definition(stored.definition_id, {"description": "v2"})
    return stored.definition_id


@pytest.mark.parametrize(("attempt", "error"), [a[1:] for a in ACCESS], ids=[a[0] for a in ACCESS])
def test_other_users_cannot_reach_private_versions(
    attempt: Callable[[CustomMetricService, str], Any],
    error: type[Exception],
    wh: Warehouse,
    alices_private: str,
) -> None:
    for who in (BOB, MALLORY):
        with pytest.raises(error):
            attempt(CustomMetricService(wh, who, ensure_tables=False), alices_private)


def test_shared_later_version_keeps_the_private_one_hidden(wh: Warehouse) -> None:
    service = CustomMetricService(wh, ALICE)
    stored = service.create_definition({**BASE, "where": "actor_id = 'u7'"})
    service.update_definition(stored.definition_id, {"visibility": "PUBLIC", "where": None})
    bob = CustomMetricService(wh, BOB, ensure_tables=False)
    with pytest.raises(MetricNotFoundError):
        bob.get_definition(stored.definition_id, version=1)
    with pytest.raises(MetricPermissionError):
        bob.update_definition(stored.definition_id, {"where": "true"})


EAST, WEST = timezone(timedelta(hours=5)), timezone(timedelta(hours=-5))
# (id, definition overrides, start, end, the field the error names)
PERIODS: list[tuple[str, dict[str, Any], Any, Any, str]] = [
    ("start-year-1-east", {}, datetime(1, 1, 1, tzinfo=EAST), None, "start"),
    ("end-year-9999-west", {}, None, datetime(9999, 12, 31, 23, tzinfo=WEST), "end"),
    ("start-text-year-1", {}, "0001-01-01T00:00:00+05:00", None, "start"),
    ("end-text-year-9999", {}, None, "9999-12-31T23:30:00-05:00", "end"),
    ("filter-year-1", {"filters": {"occurred_at": "0001-01-01T01:00:00+05:00"}}, None, None, "f"),
    ("where-year-9999", {"where": "occurred_at >= '9999-12-31T23:00:00-05:00'"}, None, None, "w"),
    ("lookback-before-year-1", {"lookback_days": 366}, None, date(1, 6, 1), "lookback_days"),
    ("lookback-day-2", {"lookback_days": 30}, None, datetime(1, 1, 2, tzinfo=UTC), "lookback"),
    ("start-int", {}, 5, None, "start"),
    ("end-list", {}, None, [2025, 1, 1], "end"),
    ("start-dict", {}, {"day": 1}, None, "start"),
    ("start-float", {}, 2025.5, None, "start"),
    ("start-word", {}, "yesterday", None, "start"),
    ("start-after-end", {}, date(2025, 2, 1), date(2025, 1, 1), "start"),
    (
        "rollup-not-midnight",
        {"data_source": "daily_metrics", "calculation_formula": "*"},
        datetime(2025, 1, 1, 12, tzinfo=UTC),
        None,
        "start",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "start", "end", "field"), [p[1:] for p in PERIODS], ids=[p[0] for p in PERIODS]
)
@pytest.mark.parametrize("dialect", ["postgres", "duckdb", "spark"])
def test_hostile_periods(
    overrides: dict[str, Any], start: Any, end: Any, field: str, dialect: str
) -> None:
    with pytest.raises(MetricValidationError) as caught:
        compile_metric({**BASE, **overrides}, dialect, start, end)
    assert caught.value.field.startswith(field)


YAML: list[tuple[str, str]] = [
    (
        "duplicate-visibility",
        "name: a\nmetric_type: COUNT\ndata_source: events\n"
        "calculation_formula: '*'\nvisibility: PRIVATE\nvisibility: PUBLIC\n",
    ),
    ("duplicate-in-flow", "{name: a, name: b, metric_type: COUNT}"),
    ("duplicate-filter-key", "filters: {event_type: a, event_type: b}\n"),
    ("deep-lists", "[" * 60_000 + "]" * 60_000),
    ("deep-mappings", "a: " * 5_000 + "1"),
    ("python-object", "!!python/object/apply:os.system ['true']"),
    ("python-name", "name: !!python/name:os.system\n"),
    (
        "billion-laughs",
        "a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    ),
    ("scalar-document", "just a string"),
    (
        "percentile-text",
        "name: a\nmetric_type: PERCENTILE\ndata_source: events\n"
        "calculation_formula: revenue_cents\npercentile: '0.5'\n",
    ),
    (
        "lookback-yes",
        "name: a\nmetric_type: COUNT\ndata_source: events\n"
        "calculation_formula: '*'\nlookback_days: yes\n",
    ),
    ("too-large", "#" * 300_000),
]


@pytest.mark.parametrize("text", [y[1] for y in YAML], ids=[y[0] for y in YAML])
def test_hostile_yaml(text: str) -> None:
    with pytest.raises(MetricValidationError) as caught:
        load_definitions_text(text, "hostile.yml")
    assert str(caught.value).startswith("hostile.yml")


# Configuration: environment values and command-line claims that must be refused.
CONFIG: list[tuple[str, str]] = [
    ("METRICS_TARGET", "sqlite"),
    ("METRICS_TARGET", "duckdb; rm -rf /"),
    ("METRICS_WEEK_START", "someday"),
    ("METRICS_SCHEMA", "metrics; drop schema raw"),
    ("METRICS_SCHEMA", 'metrics"."x'),
    ("METRICS_SCHEMA", "pg catalog"),
    ("METRICS_SCHEMA", "9lives"),
    ("METRICS_SCHEMA", "métriques"),
    ("METRICS_SOURCE_SCHEMA", 'raw"."events" where 1=0 union all select * from "dbt"."o'),
    ("METRICS_SOURCE_SCHEMA", "raw.events"),
    ("METRICS_SOURCE_SCHEMA", "raw\u200b"),
    ("METRICS_SOURCE_SCHEMA", "r" * 64),
]


@pytest.mark.parametrize(("variable", "value"), CONFIG)
def test_hostile_configuration(variable: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(WarehouseConfigError, match=f"^{variable}"):
        WarehouseConfig()


CLAIMS: list[tuple[list[str], dict[str, str]]] = [
    (["--user", "carol", "list"], {}),
    (["--user=carol", "list"], {}),
    (["--team", "blue", "list"], {}),
    (["--org=acme", "list"], {}),
    (["--admin", "list"], {}),
    (["list", "--user", "carol"], {}),
    (["list"], {"METRICS_USER": "carol"}),
    (["list"], {"METRICS_TEAM": "blue"}),
    (["list"], {"METRICS_ORG": "acme"}),
    (["list"], {"METRICS_ADMIN": "1"}),
]


@pytest.mark.parametrize(("argv", "environ"), CLAIMS)
def test_hostile_identity_claims(argv: list[str], environ: dict[str, str]) -> None:
    with pytest.raises(IdentityError, match="local operator"):
        refuse_identity_claims(argv, environ)


def test_the_hostile_suite_has_at_least_250_inputs() -> None:
    total = len(CORPUS) + len(STORED) + len(ACCESS) + len(PERIODS) + len(YAML)
    total += len(CONFIG) + len(CLAIMS)
    assert total >= 250, total
