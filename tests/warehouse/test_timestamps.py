"""`as_utc` makes what each warehouse hands back for one instant the same aware UTC value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from warehouse import WarehouseConfig, connect
from warehouse.timestamps import as_utc

INSTANT = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_an_instant_read_back_is_the_same_aware_utc_value(
    target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """DuckDB's ``timestamp`` comes back naive, PostgreSQL's ``timestamptz`` aware: both are
    the instant itself, in UTC, on its UTC day."""
    if target == "postgres":
        request.getfixturevalue("pg_env")
        config = WarehouseConfig(target="postgres")
        column = "timestamptz"
    else:
        config = WarehouseConfig(duckdb_path=str(tmp_path / "t.duckdb"))
        column = "timestamp"
    with connect(config) as wh:
        param = wh.param("at")
        ((raw,),) = wh.query(f"select cast({param} as {column})", {"at": INSTANT})
    value = as_utc(raw)
    assert value == INSTANT and value.tzinfo is UTC
    assert value.date().isoformat() == "2026-03-01"


def test_an_aware_value_in_another_zone_is_converted_and_a_naive_one_is_utc() -> None:
    east = INSTANT.astimezone(timezone(timedelta(hours=2)))  # already 2026-03-02 there
    assert as_utc(east) == INSTANT and as_utc(east).date().isoformat() == "2026-03-01"
    assert as_utc(east).tzinfo is UTC
    assert as_utc(INSTANT.replace(tzinfo=None)) == INSTANT
