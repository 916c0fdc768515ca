"""The service on real PostgreSQL and DuckDB: visibility, versions, calculation, audit, usage,
test runs that save nothing, cost classes, timeouts, and the scheduled `calculate_all_active`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import (
    SYSTEM,
    CostClass,
    CustomMetricService,
    ExecutionPolicy,
    MetricNotFoundError,
    MetricPermissionError,
    MetricTimeoutError,
    MetricValidationError,
    Principal,
    Visibility,
    calculate_all_active,
    can_edit,
    can_view,
)
from tests.custom_metrics.support import (
    aggregate,
    as_result,
    assert_same,
    duckdb_warehouse,
    load_sources,
    make_events,
    make_rollups,
    postgres_warehouse,
    reference,
    utc,
)
from tests.targets import on_every_warehouse
from warehouse import Warehouse

ALICE = Principal("alice", "red", "acme")
BOB = Principal("bob", "red", "acme")
CAROL = Principal("carol", "blue", "acme")
DAVE = Principal("dave", "red", "globex")
ERIN = Principal("erin", "blue", "acme", is_org_admin=True)
FRANK = Principal("frank", "red", "globex", is_org_admin=True)
PEOPLE = {"alice": ALICE, "bob": BOB, "carol": CAROL, "dave": DAVE, "erin": ERIN, "frank": FRANK}

# who may view / edit a definition of alice (team red, org acme), per visibility
VIEW = {
    "PRIVATE": {"alice"},
    "TEAM": {"alice", "bob", "erin"},
    "ORGANIZATION": {"alice", "bob", "carol", "erin"},
    "PUBLIC": set(PEOPLE),
}
EDIT = {
    "PRIVATE": {"alice"},
    "TEAM": {"alice", "erin"},
    "ORGANIZATION": {"alice", "erin"},
    "PUBLIC": {"alice", "erin"},
}

COUNT_BY_TYPE: dict[str, Any] = {
    "name": "events by type",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
    "dimensions": ["event_type"],
    "visibility": "PUBLIC",
}


def _svc(wh: Warehouse, who: Principal = ALICE, **kw: Any) -> CustomMetricService:
    return CustomMetricService(wh, who, **kw)


@pytest.mark.parametrize("visibility", list(VIEW))
@pytest.mark.parametrize("who", list(PEOPLE))
def test_visibility_rules(visibility: str, who: str) -> None:
    from custom_metrics import MetricDefinition

    definition = MetricDefinition.model_validate(
        {
            **COUNT_BY_TYPE,
            "visibility": visibility,
            "owner": "alice",
            "team": "red",
            "organization": "acme",
        }
    )
    assert can_view(PEOPLE[who], definition) == (who in VIEW[visibility])
    assert can_edit(PEOPLE[who], definition) == (who in EDIT[visibility])
    assert can_view(SYSTEM, definition)


def test_visibility_matrix_through_the_service(wh: Warehouse) -> None:
    ids = {
        v: _svc(wh).create_definition({**COUNT_BY_TYPE, "visibility": v}).definition_id
        for v in VIEW
    }
    for who, principal in PEOPLE.items():
        service = _svc(wh, principal, ensure_tables=False)
        listed = {s.definition_id for s in service.list_definitions()}
        for visibility, definition_id in ids.items():
            visible = who in VIEW[visibility]
            assert (definition_id in listed) == visible, (who, visibility)
            if visible:
                assert service.get_definition(definition_id).definition.owner == "alice"
            else:
                with pytest.raises(MetricNotFoundError):
                    service.get_definition(definition_id)
            if who in EDIT[visibility]:
                stored = service.update_definition(definition_id, {"description": f"by {who}"})
                assert stored.created_by == who
            elif visible:
                with pytest.raises(MetricPermissionError):
                    service.update_definition(definition_id, {"description": "no"})
            else:
                with pytest.raises(MetricNotFoundError):
                    service.update_definition(definition_id, {"description": "no"})


def test_ownership_is_the_creator(wh: Warehouse) -> None:
    with pytest.raises(MetricPermissionError):
        _svc(wh, BOB).create_definition({**COUNT_BY_TYPE, "owner": "alice"})
    with pytest.raises(MetricPermissionError):
        _svc(wh, BOB).create_definition({**COUNT_BY_TYPE, "team": "blue"})
    with pytest.raises(MetricValidationError, match="team"):
        _svc(wh, Principal("loner")).create_definition({**COUNT_BY_TYPE, "visibility": "TEAM"})
    stored = _svc(wh, BOB).create_definition(COUNT_BY_TYPE)
    assert (stored.definition.owner, stored.definition.team) == ("bob", "red")
    with pytest.raises(MetricPermissionError):
        _svc(wh, ERIN).update_definition(stored.definition_id, {"owner": "erin"})


def test_versioning_keeps_history(wh: Warehouse) -> None:
    service = _svc(wh)
    v1 = service.create_definition({**COUNT_BY_TYPE, "visibility": "PRIVATE"})
    v2 = service.update_definition(v1.definition_id, {"calculation_formula": "actor_id"})
    v3 = service.update_definition(v1.definition_id, {"filters": {"entity_type": "asset"}})
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    history = service.history(v1.definition_id)
    assert [h.version for h in history] == [1, 2, 3]
    assert [h.is_current for h in history] == [False, False, True]
    assert history[0].definition.calculation_formula == "*"
    assert history[2].definition.calculation_formula == "actor_id"
    assert history[2].definition.filters == {"entity_type": "asset"}
    assert service.get_definition(v1.definition_id).version == 3
    assert service.get_definition(v1.definition_id, version=1).definition.calculation_formula == "*"
    with pytest.raises(MetricValidationError):
        service.update_definition(v1.definition_id, {"calculation_formula": "pg_sleep(1)"})
    assert len(service.history(v1.definition_id)) == 3
    from custom_metrics import MetricDefinition

    partial = MetricDefinition.model_validate({**COUNT_BY_TYPE, "visibility": "TEAM"})
    v4 = service.update_definition(v1.definition_id, partial)
    assert (v4.version, v4.definition.owner, v4.definition.team) == (4, "alice", "red")
    # fields the model did not set are kept from the current version
    assert v4.definition.visibility is Visibility.TEAM
    assert v4.definition.filters == {"entity_type": "asset"}
    with pytest.raises(MetricPermissionError):
        service.update_definition(v1.definition_id, {"team": "blue"})
    service.deactivate_definition(v1.definition_id)
    assert v1.definition_id not in {s.definition_id for s in service.list_definitions()}
    everything = service.list_definitions(include_inactive=True)
    assert v1.definition_id in {s.definition_id for s in everything}


def _expected_counts(events: list[dict[str, Any]], start: date, end: date) -> dict[Any, Any]:
    lo, hi = utc(start), utc(end)
    return reference(
        events,
        ["event_type"],
        lambda r: lo <= r["occurred_at"] < hi,
        lambda rows: aggregate("count_star", rows),
    )


@on_every_warehouse("wh")
def test_calculate_stores_audits_and_counts(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    service = _svc(wh)
    stored = service.create_definition(COUNT_BY_TYPE)
    start, end = date(2025, 1, 1), date(2025, 2, 1)
    result = service.calculate_metric(stored.definition_id, start, end)
    assert result.status == "SUCCESS"
    got = {(v.dimensions["event_type"],): v.value for v in result.values}
    assert_same(got, _expected_counts(events, start, end))

    again = service.calculate_metric(stored.definition_id, "2025-01-01", "2025-02-01")
    values = service.values(stored.definition_id)
    assert len(values) == len(again.values) == len(result.values)  # replaced, not duplicated
    assert {(v.dimensions["event_type"],): v.value for v in values} == {
        k: pytest.approx(x) for k, x in got.items()
    }
    assert {(v.period_start, v.period_end, v.definition_version) for v in values} == {
        (start, end, 1)
    }

    audit = service.calculations(stored.definition_id)
    assert [a.status for a in audit] == ["SUCCESS", "SUCCESS"]
    first = audit[0]
    assert (first.requested_by, first.definition_version) == ("alice", 1)
    assert (first.period_start, first.period_end) == (start, end)
    assert first.row_count == len(result.values) and first.error is None
    assert first.duration_ms >= 0 and first.cost_class in {"low", "medium", "high"}
    assert first.timeout_ms and first.timeout_ms > 0

    usage = service.usage(stored.definition_id)
    assert usage is not None and usage.use_count == 2 and usage.last_used_by == "alice"

    # a new version computes into its own rows; the old version's values stay
    service.update_definition(stored.definition_id, {"filters": {"entity_type": "asset"}})
    service.calculate_metric(stored.definition_id, start, end)
    versions = {v.definition_version for v in service.values(stored.definition_id)}
    assert versions == {1, 2}


def test_calculate_a_series_by_time_grain(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    service = _svc(wh)
    stored = service.create_definition({**COUNT_BY_TYPE, "time_grain": "week"})
    result = service.calculate_metric(stored.definition_id, date(2025, 1, 1), date(2025, 1, 20))
    buckets = sorted({(v.period_start, v.period_end) for v in result.values})
    assert buckets == [
        (date(2025, 1, 1), date(2025, 1, 6)),
        (date(2025, 1, 6), date(2025, 1, 13)),
        (date(2025, 1, 13), date(2025, 1, 20)),
    ]
    for lo, hi in buckets:
        got = {
            (v.dimensions["event_type"],): v.value for v in result.values if v.period_start == lo
        }
        assert_same(got, _expected_counts(events, lo, hi))
    (audit,) = service.calculations(stored.definition_id)
    assert audit.row_count == len(result.values)


def test_invisible_definition_cannot_be_calculated(wh: Warehouse) -> None:
    stored = _svc(wh).create_definition({**COUNT_BY_TYPE, "visibility": "PRIVATE"})
    with pytest.raises(MetricNotFoundError):
        _svc(wh, BOB).calculate_metric(stored.definition_id, "2025-01-01", "2025-01-02")
    assert _svc(wh).calculations(stored.definition_id) == []


def _count(wh: Warehouse, table: str) -> int:
    return int(wh.query(f"select count(*) from {wh.schema}.{table}")[0][0])


def test_test_run_saves_nothing(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    service = _svc(wh)
    tables = ["custom_metric_definitions", "custom_metric_values", "custom_metric_calculations"]
    before = {t: _count(wh, t) for t in tables}
    run = service.test_metric_definition(COUNT_BY_TYPE, date(2025, 1, 1), date(2025, 2, 1))
    assert run.columns == ["event_type", "value"]
    assert_same(as_result(run.rows), _expected_counts(events, date(2025, 1, 1), date(2025, 2, 1)))
    assert run.cost.cost_class in set(CostClass)
    assert {t: _count(wh, t) for t in tables} == before
    default_period = service.test_metric_definition(COUNT_BY_TYPE)  # the last 7 days
    assert default_period.compiled.period is not None


def test_cost_classes_from_explain(wh: Warehouse) -> None:
    cheap = _svc(wh).estimate_cost(COUNT_BY_TYPE, date(2025, 1, 1), date(2025, 2, 1))
    assert cheap.cost_class is CostClass.LOW and cheap.estimate > 0
    assert cheap.unit == ("cost" if wh.dialect == "postgres" else "rows")
    strict = ExecutionPolicy(postgres_cost_limits=(0.0, 0.5), duckdb_rows_limits=(0.0, 0.5))
    dear = _svc(wh, policy=strict, ensure_tables=False).estimate_cost(COUNT_BY_TYPE)
    assert dear.cost_class is CostClass.HIGH


# ---- a fresh warehouse per test: slow queries and the scheduled run ----------------------


def _fresh(dialect: str, tmp_path: Path, pg_database: dict[str, str] | None) -> Warehouse:
    if dialect == "duckdb":
        return duckdb_warehouse(tmp_path / "fresh.duckdb")
    assert pg_database is not None
    return postgres_warehouse(pg_database, f"cmf_{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["duckdb", "postgres"])
def fresh_wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """An empty warehouse (own DuckDB file or own PostgreSQL schema)."""
    pg = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    wh = _fresh(request.param, tmp_path, pg)
    wh.execute(f"create schema if not exists {wh.schema}")
    yield wh
    if wh.dialect == "postgres":
        wh.execute(f"drop schema if exists {wh.schema} cascade")
    wh.close()


def _big_events(wh: Warehouse) -> None:
    """A few hundred thousand (PG) / a million (DuckDB) generated events, built in SQL."""
    s = wh.schema
    if wh.dialect == "postgres":
        wh.execute(
            f"""create table {s}.stg_events as select 'e' || g as event_id,
            timestamptz '2025-01-01 00:00:00+00' + (g % 2000000) * interval '1 second'
              as occurred_at,
            date '2025-01-01' as event_date, 'click'::text as event_type,
            'u' || (g % 100000) as actor_id, 'asset'::text as entity_type,
            'a' || (g % 5000) as entity_id, (g % 1000)::bigint as revenue_cents,
            jsonb_build_object('category', 'c' || (g % 7)) as properties,
            timestamptz '2025-01-01 00:00:00+00' as ingested_at
            from generate_series(1, 300000) g"""
        )
        wh.execute(f"analyze {s}.stg_events")
    else:
        wh.execute(
            f"""create table {s}.stg_events as select 'e' || i as event_id,
            timestamptz '2025-01-01 00:00:00+00' + to_seconds(i % 2000000) as occurred_at,
            date '2025-01-01' as event_date, 'click' as event_type,
            'u' || (i % 100000) as actor_id, 'asset' as entity_type,
            'a' || (i % 5000) as entity_id, (i % 1000)::bigint as revenue_cents,
            json_object('category', 'c' || (i % 7)) as properties,
            timestamptz '2025-01-01 00:00:00+00' as ingested_at
            from range(1000000) t(i)"""
        )


SLOW: dict[str, Any] = {
    "name": "deliberately slow",
    "metric_type": "DISTINCT_COUNT",
    "data_source": "events",
    "calculation_formula": "lower(upper(event_id))",
    "dimensions": ["properties.category"],
    "where": "upper(lower(entity_id)) like '%1%' or lower(actor_id) like '%9%'",
    "visibility": "PUBLIC",
}


@pytest.mark.slow
def test_slow_query_is_stopped_and_audited(fresh_wh: Warehouse) -> None:
    _big_events(fresh_wh)
    # Every plan is "high" here, and high queries get 20 ms; low ones could run for a minute.
    policy = ExecutionPolicy(
        timeout_ms={CostClass.LOW: 60_000, CostClass.MEDIUM: 60_000, CostClass.HIGH: 20},
        postgres_cost_limits=(1.0, 2.0),
        duckdb_rows_limits=(1.0, 2.0),
    )
    service = _svc(fresh_wh, policy=policy)
    stored = service.create_definition(SLOW)
    with pytest.raises(MetricTimeoutError):
        service.calculate_metric(stored.definition_id, date(2025, 1, 1), date(2025, 2, 1))
    (audit,) = service.calculations(stored.definition_id)
    assert audit.status == "FAILED"
    assert audit.error and ("timeout" in audit.error or "interrupted" in audit.error)
    assert (audit.cost_class, audit.timeout_ms, audit.row_count) == ("high", 20, 0)
    assert audit.definition_version == 1 and audit.requested_by == "alice"
    assert service.values(stored.definition_id) == []
    usage = service.usage(stored.definition_id)
    assert usage is not None and usage.use_count == 1

    # The same definition under a generous policy finishes: the timeout was the only cause.
    ok = _svc(fresh_wh, ensure_tables=False).calculate_metric(
        stored.definition_id, date(2025, 1, 1), date(2025, 2, 1)
    )
    assert ok.status == "SUCCESS" and len(ok.values) == 7
    # The connection is still usable after the cancelled statement.
    assert fresh_wh.query("select 1") == [(1,)]


def test_calculation_is_read_only(fresh_wh: Warehouse) -> None:
    """The runner's transaction refuses writes even if a statement tried one."""
    from custom_metrics.compiler import CompiledMetric
    from custom_metrics.execution import QueryFailure, ReadOnlyRunner

    fresh_wh.execute(f"create table {fresh_wh.schema}.t (x int)")
    compiled = CompiledMetric(
        f"insert into {fresh_wh.schema}.t values (1) returning x",
        {},
        fresh_wh.dialect,
        ("value",),
        definition=None,  # type: ignore[arg-type]
    )
    with pytest.raises(QueryFailure, match=r"(?i)read.only"):
        ReadOnlyRunner(fresh_wh).run([compiled])
    assert fresh_wh.query(f"select count(*) from {fresh_wh.schema}.t") == [(0,)]


def test_calculate_all_active(fresh_wh: Warehouse) -> None:
    events = make_events(300, seed=3)
    load_sources(fresh_wh, events, make_rollups(events))
    alice = _svc(fresh_wh)
    a = alice.create_definition(COUNT_BY_TYPE)
    b = alice.create_definition({**COUNT_BY_TYPE, "visibility": "PRIVATE", "name": "private"})
    c = alice.create_definition({**COUNT_BY_TYPE, "name": "inactive"})
    alice.deactivate_definition(c.definition_id)
    day = date(2025, 1, 15)
    results = calculate_all_active(fresh_wh, day, day + timedelta(days=1))
    by_id = {r.definition_id: r for r in results}
    assert set(by_id) == {a.definition_id, b.definition_id}
    assert all(r.status == "SUCCESS" for r in results)
    for r in results:
        got = {(v.dimensions["event_type"],): v.value for v in r.values}
        assert_same(got, _expected_counts(events, day, day + timedelta(days=1)))
    assert alice.calculations(a.definition_id)[0].requested_by == "system"
    stored = fresh_wh.query(
        f"select count(*) from {fresh_wh.schema}.custom_metric_values "
        f"where period_start = {fresh_wh.param('d')}",
        {"d": day},
    )
    assert stored[0][0] == sum(len(r.values) for r in results)


def test_visibility_enum_values() -> None:
    assert [v.value for v in Visibility] == ["PRIVATE", "TEAM", "ORGANIZATION", "PUBLIC"]


def test_postgres_reader_role_limits_what_a_query_can_read(pg_wh: Warehouse) -> None:
    """With `reader_role`, queries run as a role that can read only the granted tables."""
    from custom_metrics import compile_metric
    from custom_metrics.compiler import CompiledMetric
    from custom_metrics.execution import QueryFailure, ReadOnlyRunner

    CustomMetricService(pg_wh, ALICE)  # the custom-metric tables exist
    role = f"cm_reader_{uuid.uuid4().hex[:8]}"
    pg_wh.execute(f"create role {role} nologin")
    try:
        pg_wh.execute(f"grant usage on schema {pg_wh.schema} to {role}")
        pg_wh.execute(f"grant select on {pg_wh.schema}.stg_events to {role}")
        runner = ReadOnlyRunner(pg_wh, ExecutionPolicy(reader_role=role))
        (result,) = runner.run([compile_metric(COUNT_BY_TYPE, "postgres", schema=pg_wh.schema)])
        assert result.rows
        forged = CompiledMetric(
            f"select count(*) from {pg_wh.schema}.custom_metric_definitions",
            {},
            "postgres",
            ("value",),
            definition=None,  # type: ignore[arg-type]
        )
        with pytest.raises(QueryFailure, match="permission denied"):
            runner.run([forged])
    finally:
        pg_wh.execute(f"drop owned by {role}")
        pg_wh.execute(f"drop role {role}")
