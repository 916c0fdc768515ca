"""Drive the dbt project against one warehouse and compare its tables with the reference."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from metrics_events import Event, delete_events, ensure_source_table, load_events
from tests.batch import reference
from warehouse import Warehouse, WarehouseConfig, connect
from warehouse.dbt_runner import DbtRunSummary, run_dbt, window_vars
from warehouse.spark import refresh_tables

TABLES = tuple(reference.GRAINS)


@dataclass
class BatchHarness:
    """One warehouse (DuckDB file or PostgreSQL schema pair) the tests build into."""

    target: str
    schema: str
    source_schema: str
    dbt_target_path: Path

    def connect(self) -> Warehouse:
        """A connection that sees every write so far (on Spark, also the dbt children's of
        Dagster runs: the session's cached tables are refreshed)."""
        wh = connect(WarehouseConfig())
        if wh.dialect == "spark":
            refresh_tables(wh)
        return wh

    def load(self, events: Iterable[Event]) -> int:
        with self.connect() as wh:
            ensure_source_table(wh)
            return load_events(wh, events)

    def delete(self, event_ids: Iterable[str]) -> int:
        with self.connect() as wh:
            return delete_events(wh, event_ids)

    def build(
        self, start: date | None = None, end: date | None = None, *, full_refresh: bool = False
    ) -> DbtRunSummary:
        vars_ = window_vars(start, end) if start and end else None
        extra = ["--full-refresh"] if full_refresh else []
        return run_dbt("build", vars=vars_, extra_args=extra, target_path=self.dbt_target_path)

    def fetch(self, table: str, schema: str | None = None) -> dict[tuple[Any, ...], dict[str, Any]]:
        """A table's rows keyed by its grain."""
        with self.connect() as wh:
            return rows_by_grain(wh, schema or self.schema, table)

    def assert_matches_reference(self, events: list[Event], week_start_index: int = 0) -> None:
        expected = reference.all_tables(events, week_start_index)
        for table in TABLES:
            assert_same_rows(table, self.fetch(table), expected[table])


def rows_by_grain(wh: Warehouse, schema: str, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A rollup table's rows keyed by its grain (docs/reference.md): a dict of the other columns."""
    grain = reference.GRAINS[table]
    rows, columns = wh.query_with_columns(f"select * from {schema}.{table}")
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        key = tuple(record.pop(column) for column in grain)
        assert key not in out, f"{table}: duplicate grain {key}"
        out[key] = record
    return out


def assert_same_rows(
    table: str, actual: dict[tuple[Any, ...], dict[str, Any]], expected: dict[tuple[Any, ...], Any]
) -> None:
    """Equal key sets and equal values, with the first differences spelled out on failure."""
    missing = sorted(set(expected) - set(actual), key=str)
    extra = sorted(set(actual) - set(expected), key=str)
    wrong = []
    for key in sorted(set(expected) & set(actual), key=str):
        for column, value in expected[key].items():
            if actual[key][column] != value:
                wrong.append(f"{key}.{column}: got {actual[key][column]!r}, want {value!r}")
    problems = []
    if missing:
        problems.append(f"{len(missing)} rows missing, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} unexpected rows, e.g. {extra[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} wrong values, e.g. {wrong[:5]}")
    assert not problems, f"{table} differs from the reference: " + "; ".join(problems)
    assert expected, f"{table}: the reference is empty; the test proves nothing"


def current_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("METRICS_", "PG"))}
