"""The warehouse package on Spark: the same calling convention as on DuckDB and PostgreSQL
(named parameters, tuples, column names), and the source table loaded, replaced and pruned
through it, each checked against plain Python. One Spark session serves the whole module."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from metrics_events import delete_events, load_events
from metrics_events.cli import main
from metrics_events.generator import GeneratorConfig, generate_events
from warehouse import Warehouse, WarehouseConfig, connect
from warehouse.spark import partition_rows, rewrite_partition

pytestmark = pytest.mark.spark


@pytest.fixture()
def wh(spark_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    """A Spark connection with its own source and output schemas, dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("METRICS_TARGET", "spark")
    monkeypatch.setenv("METRICS_SOURCE_SCHEMA", f"raw_{suffix}")
    monkeypatch.setenv("METRICS_SCHEMA", f"metrics_{suffix}")
    with connect(WarehouseConfig()) as warehouse:
        yield warehouse
        for schema in (warehouse.source_schema, warehouse.schema):
            warehouse.execute(f"drop schema if exists {schema} cascade")


def test_calling_convention(wh: Warehouse) -> None:
    assert wh.dialect == "spark" and wh.param("day") == ":day"
    wh.execute(f"create schema if not exists {wh.schema}")
    table = f"{wh.schema}.notes"
    wh.execute(
        f"create table {table} (day date, label string, amount decimal(20, 2)) using parquet"
    )
    assert wh.table_exists(wh.schema, "notes") and not wh.table_exists(wh.schema, "absent")
    rows = [
        {"day": date(2024, 2, 29), "label": "it's", "amount": Decimal("12.50")},
        {"day": date(2024, 3, 1), "label": "two", "amount": Decimal("-0.01")},
    ]
    insert = (
        f"insert into {table} values ({wh.param('day')}, {wh.param('label')}, {wh.param('amount')})"
    )
    wh.executemany(insert, rows)
    found, columns = wh.query_with_columns(
        f"select day, label, amount from {table} where day >= {wh.param('since')} order by day",
        {"since": date(2024, 2, 1)},
    )
    assert columns == ["day", "label", "amount"]
    assert found == [tuple(r.values()) for r in rows]
    with wh.transaction():
        wh.execute(f"drop table {table}")
    assert not wh.table_exists(wh.schema, "notes")


def test_load_and_delete_events_match_python(wh: Warehouse) -> None:
    config = GeneratorConfig(start=date(2024, 2, 28), days=3, events_per_day=40, seed=3)
    events = list(generate_events(config))
    assert load_events(wh, events) == len(events)
    gone = {e.event_id for e in events[::5]}
    assert delete_events(wh, gone) == len(gone)
    kept = [e for e in events if e.event_id not in gone]
    rows = wh.query(
        f"select cast(occurred_at as date), event_type, count(*), sum(revenue_cents), "
        f"count(actor_id) from {wh.source_schema}.events group by 1, 2"
    )
    got = {(day, kind): (n, revenue, actors) for day, kind, n, revenue, actors in rows}
    expected: dict[tuple[date, str], list[int | None]] = {}
    for event in kept:
        cell = expected.setdefault((event.event_date, event.event_type), [0, None, 0])
        cell[0] = int(cell[0] or 0) + 1
        if event.revenue_cents is not None:
            cell[1] = int(cell[1] or 0) + event.revenue_cents
        cell[2] = int(cell[2] or 0) + (event.actor_id is not None)
    assert got == {key: tuple(value) for key, value in expected.items()}


def test_generate_events_writes_and_replaces(wh: Warehouse) -> None:
    def per_day() -> Counter[date]:
        rows = wh.query(
            f"select cast(occurred_at as date), count(*) from {wh.source_schema}.events group by 1"
        )
        return Counter({day: n for day, n in rows})

    args = ["--start", "2024-03-01", "--days", "2", "--events-per-day", "30", "--seed", "5"]
    assert main(args) == 0
    first = GeneratorConfig(start=date(2024, 3, 1), days=2, events_per_day=30, seed=5)
    assert per_day() == Counter(e.event_date for e in generate_events(first))
    assert (
        main(
            [
                "--replace",
                "--start",
                "2024-04-01",
                "--days",
                "1",
                "--seed",
                "6",
                "--events-per-day",
                "20",
            ]
        )
        == 0
    )
    second = GeneratorConfig(start=date(2024, 4, 1), days=1, events_per_day=20, seed=6)
    assert per_day() == Counter(e.event_date for e in generate_events(second))


def test_rewrite_partition_replaces_one_partition_in_one_write(wh: Warehouse) -> None:
    """A partition of any size is rewritten by one statement (no chunks a failure could cut
    between); other partitions stay; rows of the wrong type are refused before anything is
    written; no rows drop the partition. Checked against the rows written."""
    wh.execute(f"create schema if not exists {wh.schema}")
    table = f"{wh.schema}.parts"
    wh.execute(
        f"create table {table} (n bigint, at timestamp, owner string) using parquet "
        "partitioned by (owner)"
    )
    columns = ("n", "at", "owner")
    when = datetime(2024, 2, 29, 23, 30, tzinfo=UTC)
    many = [{"n": n, "at": when} for n in range(450)]
    rewrite_partition(wh, table, columns, "owner", "a's", many)
    rewrite_partition(wh, table, columns, "owner", "b", [{"n": -1, "at": when}])
    assert sorted(r["n"] for r in partition_rows(wh, table, columns, "owner", "a's")) == list(
        range(450)
    )
    few = [{"n": 7, "at": when}, {"n": 8, "at": None}]
    rewrite_partition(wh, table, columns, "owner", "a's", few)
    # Spark reads a timestamp back naive, in its session zone (UTC): the same instant
    assert partition_rows(wh, table, columns, "owner", "a's") == [
        {"n": 7, "at": when.replace(tzinfo=None), "owner": "a's"},
        {"n": 8, "at": None, "owner": "a's"},
    ]
    with pytest.raises(TypeError):
        rewrite_partition(wh, table, columns, "owner", "a's", [{"n": "nine", "at": when}])
    assert len(partition_rows(wh, table, columns, "owner", "a's")) == 2
    rewrite_partition(wh, table, columns, "owner", "a's", [])
    assert wh.query(f"select owner, n from {table}") == [("b", -1)]


def test_utc_day_number_is_the_utc_day_since_1970(wh: Warehouse) -> None:
    """As on DuckDB and PostgreSQL (tests/warehouse/test_connection.py)."""
    from tests.warehouse.test_connection import INSTANTS

    for text in INSTANTS:
        at = datetime.fromisoformat(text)
        rows = wh.query(f"select {wh.utc_day_number(wh.param('at'))}", {"at": at})
        assert int(rows[0][0]) == (at.astimezone(UTC).date() - date(1970, 1, 1)).days, text
