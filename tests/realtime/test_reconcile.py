"""Reconciliation of event-mirroring counters against the warehouse's stg_events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from realtime.metrics import RealtimeMetrics
from realtime.reconcile import LOG_TABLE, CounterMapping, reconcile
from tests.realtime.conftest import WITH_SPARK
from warehouse import Warehouse

LABELS = {"entity_type": "asset"}
MAPPING = CounterMapping("page_views", {"event_type": "page_view", "entity_type": "asset"}, LABELS)


def _create_events(wh: Warehouse, rows: list[tuple[str, int, str, str]]) -> None:
    """stg_events with the columns reconciliation reads, as the dbt project types them, from
    (event_id, epoch, type, entity_type)."""
    text, instant = ("string", "timestamp") if wh.dialect == "spark" else ("text", "timestamptz")
    wh.execute(f"create schema if not exists {wh.schema}")
    wh.execute(
        f"create table {wh.schema}.stg_events (event_id {text}, occurred_at {instant},"
        f" event_date date, event_type {text}, actor_id {text}, entity_type {text},"
        f" entity_id {text}, ingested_at {instant})"
        + (" using parquet" if wh.dialect == "spark" else "")
    )
    p = wh.param
    wh.executemany(
        f"insert into {wh.schema}.stg_events (event_id, occurred_at, event_date, event_type,"
        " actor_id, entity_type, entity_id, ingested_at) values ("
        f"{p('id')}, {p('at')}, {p('day')}, {p('type')}, 'u1', {p('entity')}, 'e1', {p('at')})",
        [
            {"id": i, "at": at, "day": at.date(), "type": t, "entity": e}
            for i, epoch, t, e in rows
            for at in [datetime.fromtimestamp(epoch, UTC)]
        ],
    )


@WITH_SPARK
def test_reconcile_corrects_drift_and_logs_it(rt: RealtimeMetrics, warehouse: Warehouse) -> None:
    hour = int(rt.client.time()[0]) // 3600

    def start(offset: int) -> int:
        """One minute into the hour `offset` hours from now."""
        return (hour + offset) * 3600 + 60

    events = (
        [(f"a{i}", start(-3) + i, "page_view", "asset") for i in range(2)]
        + [(f"b{i}", start(-2) + i, "page_view", "asset") for i in range(3)]
        + [("b0", start(-2), "page_view", "asset")]  # a duplicate delivery: counts once
        + [(f"c{i}", start(-1) + i, "page_view", "asset") for i in range(4)]
        + [(f"d{i}", start(-1) + i, "click", "asset") for i in range(6)]  # other type
        + [(f"e{i}", start(-1) + i, "page_view", "org") for i in range(5)]  # other entity
        + [("now", start(0), "page_view", "asset")]  # current hour: not compared
    )
    _create_events(warehouse, events)
    series = rt.ops.series("counter", "page_views", LABELS)[0]
    # What Redis holds: right for hour -3, 2 too many for hour -2, nothing for hour -1,
    # and live traffic in the current hour.
    rt.execute_many(
        [rt.ops.adjust_counter(series, 2, hour - 3), rt.ops.adjust_counter(series, 5, hour - 2)]
    )
    for _ in range(10):
        rt.increment_counter("page_views", 1, LABELS)
    assert rt.get_counter("page_views", LABELS) == 17

    findings = reconcile(rt, warehouse, [MAPPING], hours=6)

    if int(rt.client.time()[0]) // 3600 != hour:
        pytest.skip("an hour boundary passed during the test")
    drift = {f.hour_start.timestamp() // 3600 - hour: f.drift for f in findings}
    assert drift == {-6: 0, -5: 0, -4: 0, -3: 0, -2: -2, -1: 4}
    assert all(f.corrected == bool(f.drift) for f in findings)
    assert rt.get_counter("page_views", LABELS) == 17 - 2 + 4
    buckets = rt.client.hgetall(rt.ops.key(series) + ":h")
    assert {int(h) - hour: int(v) for h, v in buckets.items()} == {-3: 2, -2: 3, -1: 4, 0: 10}
    logged = warehouse.query(
        f"select name, labels, warehouse_value, redis_value, drift, corrected"
        f" from {warehouse.schema}.{LOG_TABLE} where drift <> 0 order by hour_start"
    )
    assert logged == [
        ("page_views", "entity_type=asset", 3, 5.0, -2.0, True),
        ("page_views", "entity_type=asset", 4, 0.0, 4.0, True),
    ]

    # A second run finds nothing left to correct.
    again = reconcile(rt, warehouse, [MAPPING], hours=6)
    assert all(f.drift == 0 for f in again)
    assert rt.get_counter("page_views", LABELS) == 19
    total_rows = warehouse.query(f"select count(*) from {warehouse.schema}.{LOG_TABLE}")
    assert total_rows == [(12,)]


@WITH_SPARK
def test_dry_run_reports_without_correcting(rt: RealtimeMetrics, warehouse: Warehouse) -> None:
    hour = int(rt.client.time()[0]) // 3600
    _create_events(
        warehouse,
        [
            ("x", (hour - 1) * 3600 + 5, "page_view", "asset"),
            ("y", hour * 3600 + 1, "click", "asset"),
        ],
    )
    findings = reconcile(rt, warehouse, [MAPPING], hours=2, correct=False)
    assert [(f.drift, f.corrected) for f in findings if f.drift] == [(1, False)]
    assert rt.get_counter("page_views", LABELS) == 0


def test_mapping_validation() -> None:
    with pytest.raises(ValueError, match="revenue_cents"):
        CounterMapping("x", {"revenue_cents": "1"})
    with pytest.raises(ValueError):
        CounterMapping("x", {})
    with pytest.raises(ValueError):
        CounterMapping("x", {"event_type": []})


def test_hours_beyond_the_kept_buckets_are_refused(
    rt: RealtimeMetrics, warehouse: Warehouse
) -> None:
    with pytest.raises(ValueError, match="hours"):
        reconcile(rt, warehouse, [MAPPING], hours=rt.settings.counter_hours)


@WITH_SPARK
def test_missing_events_table_is_a_clear_error(rt: RealtimeMetrics, warehouse: Warehouse) -> None:
    with pytest.raises(LookupError, match="stg_events"):
        reconcile(rt, warehouse, [MAPPING])
