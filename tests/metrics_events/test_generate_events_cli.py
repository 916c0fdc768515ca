"""`metrics-generate-events` checks everything before writing, replaces in one transaction, and
ends bad input with one line naming the input (on DuckDB and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

import metrics_events.source as source
from metrics_events.cli import main
from metrics_events.generator import GeneratorConfig
from warehouse import WarehouseConfig, connect


@pytest.fixture(params=["duckdb", "postgres"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The environment pointed at a fresh DuckDB file or a fresh PostgreSQL source schema."""
    monkeypatch.setenv("METRICS_TARGET", request.param)
    schema = f"gen_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("METRICS_SOURCE_SCHEMA", schema)
    if request.param == "duckdb":
        monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "events.duckdb"))
        yield request.param
        return
    request.getfixturevalue("pg_env")
    yield request.param
    with connect(WarehouseConfig()) as wh:
        wh.execute(f"drop schema if exists {schema} cascade")


def _rows() -> int:
    with connect(WarehouseConfig()) as wh:
        return int(wh.query(f"select count(*) from {wh.source_schema}.events")[0][0])


def _one_line(err: str) -> str:
    (line,) = err.strip().splitlines()
    assert line.startswith("metrics-generate-events: error: ")
    return line


def test_replace_that_cannot_run_keeps_the_rows(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--days", "2", "--events-per-day", "50"]) == 0
    before = _rows()
    assert before > 0
    capsys.readouterr()
    assert main(["--replace", "--start", "9999-12-25", "--days", "30"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "9999-12-31" in line and "--start 9999-12-25" in line
    assert _rows() == before


def test_replace_is_one_transaction(
    target: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--days", "2", "--events-per-day", "50"]) == 0
    before = _rows()

    def broken(wh: object, lines: object) -> int:
        raise RuntimeError("disk full while loading")

    monkeypatch.setattr(source, "_copy", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["--replace", "--days", "1", "--events-per-day", "10"])
    assert _rows() == before
    monkeypatch.undo()


def test_absurd_sizes_are_refused_before_anything(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--events-per-day", str(10**18)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "100,000,000" in line and "--events-per-day" in line
    with connect(WarehouseConfig()) as wh:
        assert not wh.table_exists(wh.source_schema, "events")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"events_per_day": 10**18},
        {"days": 200_000, "events_per_day": 1_000},
        {"start": date(9999, 12, 25), "days": 30},
        {"days": 0},
        {"events_per_day": -1},
    ],
)
def test_generator_config_refuses_what_it_cannot_make(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"limit|9999-12-31|at least 1|>= 0"):
        GeneratorConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_source_schema_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METRICS_TARGET", "duckdb")
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "x.duckdb"))
    monkeypatch.setenv("METRICS_SOURCE_SCHEMA", 'raw"."events" where 1=0 --')
    assert main(["--days", "1", "--events-per-day", "5"]) == 2
    assert "METRICS_SOURCE_SCHEMA=" in _one_line(capsys.readouterr().err)


def test_a_file_that_is_not_duckdb_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database\n" * 100)
    monkeypatch.setenv("METRICS_TARGET", "duckdb")
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(text))
    assert main(["--days", "1", "--events-per-day", "5"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "METRICS_DUCKDB_PATH=" in line and "not a database" not in line
    assert text.read_text().startswith("this is not a database")


def test_a_missing_postgres_database_is_one_line(
    pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METRICS_TARGET", "postgres")
    monkeypatch.setenv("PGDATABASE", "metrics_no_such_db_" + uuid.uuid4().hex[:6])
    assert main(["--days", "1", "--events-per-day", "5"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "does not exist: create it (createdb metrics_no_such_db_" in line
