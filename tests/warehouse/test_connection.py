"""Opening DuckDB while another process writes it: a bounded wait, then a clear error. On
PostgreSQL, `table_exists` answers as information_schema.tables does."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from warehouse import WarehouseBusyError, WarehouseConfig, connect

HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("create table if not exists t as select 1 as x")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    open(sys.argv[1] + ".released", "w").close()
    con.close()
    """
)


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the file for writing and keeps it for `seconds`."""
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "holding"
    return writer


def test_a_reader_fails_clearly_when_the_writer_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    writer = _hold(path, 30)
    try:
        with pytest.raises(WarehouseBusyError, match="a build is probably running"):
            connect(WarehouseConfig(duckdb_path=str(path)), read_only=True, wait_seconds=0.3)
    finally:
        writer.kill()
        writer.wait()


def test_a_reader_waits_for_the_writer_to_finish(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    writer = _hold(path, 1.0)
    wh = connect(WarehouseConfig(duckdb_path=str(path)), read_only=True, wait_seconds=120)
    try:
        assert Path(f"{path}.released").exists()  # it got in only once the writer let go
        assert wh.query("select x from t") == [(1,)]
    finally:
        wh.close()
        writer.wait()


def test_postgres_table_exists_agrees_with_information_schema(
    pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tables, partitioned tables and views exist; materialized views, indexes, sequences and
    absent names do not; names match exactly (no case folding), as in information_schema."""
    schema = f"te_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("METRICS_TARGET", "postgres")
    with connect(WarehouseConfig()) as wh:
        wh.execute(f"create schema {schema}")
        try:
            for statement in (
                "create table {s}.plain (x int primary key)",
                'create table {s}."Mixed" (x int)',
                "create table {s}.parted (x int) partition by range (x)",
                "create view {s}.a_view as select 1 as x",
                "create materialized view {s}.a_matview as select 1 as x",
                "create sequence {s}.a_sequence",
            ):
                wh.execute(statement.format(s=schema))
            names = ["plain", "Mixed", "mixed", "MIXED", "parted", "a_view", "a_matview"]
            names += ["a_sequence", "plain_pkey", "absent"]
            answers = {name: wh.table_exists(schema, name) for name in names}
            listed = {
                row[0]
                for row in wh.query(
                    "select table_name from information_schema.tables where table_schema = %(s)s",
                    {"s": schema},
                )
            }
            assert answers == {name: name in listed for name in names}
            assert {name for name, found in answers.items() if found} == {
                "plain",
                "Mixed",
                "parted",
                "a_view",
            }
            assert not wh.table_exists(schema.upper(), "plain")
            assert not wh.table_exists("absent_schema", "plain")
        finally:
            wh.execute(f"drop schema {schema} cascade")


INSTANTS = [
    "1970-01-01 00:00:00+00:00",
    "2024-02-28 23:59:59.999999+00:00",
    "2024-02-29 00:00:00+00:00",
    "2024-03-01 01:30:00+02:00",  # still Feb 29 in UTC
    "2024-12-31 23:30:00-05:00",  # Jan 1 in UTC
    "2025-01-01 00:00:00+00:00",
]


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_utc_day_number_is_the_utc_day_since_1970(
    target: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The freshness probe groups events by this number: the days since 1970-01-01 of each
    instant's UTC date, whatever offset it was written with, at midnight edges and leap days."""
    if target == "postgres":
        request.getfixturevalue("pg_env")
    else:
        monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "days.duckdb"))
    monkeypatch.setenv("METRICS_TARGET", target)
    with connect(WarehouseConfig()) as wh:
        for text in INSTANTS:
            at = datetime.fromisoformat(text)
            rows = wh.query(f"select {wh.utc_day_number(wh.param('at'))}", {"at": at})
            expected = (at.astimezone(UTC).date() - date(1970, 1, 1)).days
            assert int(rows[0][0]) == expected, text
