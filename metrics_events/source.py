"""The source table `{METRICS_SOURCE_SCHEMA}.events` (docs/reference.md): create, load, delete.

The application owns this table; these helpers are for the demo, the tests and benchmarks.
Loading goes through CSV on every warehouse (COPY, read_csv, Spark's CSV reader): millions of
rows in seconds.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from metrics_events.generator import Event
from warehouse import Warehouse

COLUMNS = (
    "event_id",
    "occurred_at",
    "event_type",
    "actor_id",
    "entity_type",
    "entity_id",
    "revenue_cents",
    "properties",
    "ingested_at",
)
_CHUNK = 200_000


def ensure_source_table(wh: Warehouse) -> None:
    """Create the source schema and table (and the indexes an app would keep) if missing."""
    schema = wh.source_schema
    wh.execute(f"create schema if not exists {schema}")
    if wh.dialect == "spark":
        wh.execute(
            f"""
            create table if not exists {schema}.events (
                event_id string,
                occurred_at timestamp,
                event_type string,
                actor_id string,
                entity_type string,
                entity_id string,
                revenue_cents bigint,
                properties string,
                ingested_at timestamp
            ) using parquet
            """
        )
        return
    json_type = "jsonb" if wh.dialect == "postgres" else "json"
    wh.execute(
        f"""
        create table if not exists {schema}.events (
            event_id text not null,
            occurred_at timestamptz not null,
            event_type text not null,
            actor_id text,
            entity_type text not null,
            entity_id text not null,
            revenue_cents bigint,
            properties {json_type},
            ingested_at timestamptz not null
        )
        """
    )
    for column in ("occurred_at", "ingested_at"):
        wh.execute(f"create index if not exists events_{column}_idx on {schema}.events ({column})")


def _field(value: object) -> str:
    """One CSV field: NULL is empty and unquoted; every text is quoted, so '' stays ''."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
    return '"' + text.replace('"', '""') + '"'


def _csv_line(event: Event) -> str:
    return ",".join(_field(getattr(event, column)) for column in COLUMNS) + "\n"


def load_events(
    wh: Warehouse,
    events: Iterable[Event],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Append events to the source table; returns how many rows were written."""
    ensure_source_table(wh)
    total = 0
    buffer: list[str] = []
    for event in events:
        buffer.append(_csv_line(event))
        if len(buffer) >= _CHUNK:
            total += _copy(wh, buffer)
            buffer.clear()
            if progress:
                progress(total)
    if buffer:
        total += _copy(wh, buffer)
        if progress:
            progress(total)
    return total


def write_csv(events: Iterable[Event], path: str | os.PathLike[str]) -> int:
    """Write events as the CSV that `load_csv` reads (no header); returns the row count."""
    rows = 0
    with open(path, "w", encoding="utf-8") as file:
        for event in events:
            file.write(_csv_line(event))
            rows += 1
    return rows


def load_csv(wh: Warehouse, path: str | os.PathLike[str]) -> None:
    """Bulk-load a CSV written by `write_csv` into the source table."""
    ensure_source_table(wh)
    if wh.dialect == "postgres":
        with open(path, encoding="utf-8") as file:
            _copy_postgres(wh, file)
    elif wh.dialect == "spark":
        _insert_csv_spark(wh, str(Path(path).resolve()))
    else:
        _insert_csv_duckdb(wh, str(path))


def _copy_postgres(wh: Warehouse, file: IO[str]) -> None:
    """COPY CSV rows (no header) from a file-like object into the PostgreSQL source table."""
    with wh.raw.cursor() as cur:
        cur.copy_expert(
            f"copy {wh.source_schema}.events ({', '.join(COLUMNS)}) from stdin with (format csv)",
            file,
        )


def _insert_csv_duckdb(wh: Warehouse, path: str) -> None:
    wh.execute(
        f"""
        insert into {wh.source_schema}.events ({", ".join(COLUMNS)})
        select event_id, occurred_at, event_type, actor_id, entity_type, entity_id,
               revenue_cents, cast(properties as json), ingested_at
        from read_csv($path, header = false, allow_quoted_nulls = false, quote = '"',
            columns = {{
                'event_id': 'varchar', 'occurred_at': 'timestamptz', 'event_type': 'varchar',
                'actor_id': 'varchar', 'entity_type': 'varchar', 'entity_id': 'varchar',
                'revenue_cents': 'bigint', 'properties': 'varchar', 'ingested_at': 'timestamptz'
            }})
        """,
        {"path": path},
    )


def _insert_csv_spark(wh: Warehouse, path: str) -> None:
    """Spark reads the CSV as text columns (quotes doubled, as written), then casts them."""
    if "'" in path or "\\" in path:
        raise ValueError(f"a CSV path for Spark must not contain quotes or backslashes: {path!r}")
    text_columns = ", ".join(f"{column} string" for column in COLUMNS)
    wh.execute(
        f"create or replace temporary view metrics_events_csv ({text_columns}) using csv "
        f"options (path '{path}', header 'false', quote '\"', escape '\"', mode 'FAILFAST')"
    )
    wh.execute(
        f"""
        insert into {wh.source_schema}.events
        select event_id, cast(occurred_at as timestamp), event_type, actor_id, entity_type,
               entity_id, cast(revenue_cents as bigint), properties,
               cast(ingested_at as timestamp)
        from metrics_events_csv
        """
    )
    wh.execute("drop view if exists metrics_events_csv")


def _copy(wh: Warehouse, lines: Sequence[str]) -> int:
    if wh.dialect == "postgres":
        _copy_postgres(wh, io.StringIO("".join(lines)))
        return len(lines)
    handle, path = tempfile.mkstemp(suffix=".csv", prefix="events_")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.writelines(lines)
        if wh.dialect == "spark":
            _insert_csv_spark(wh, path)
        else:
            _insert_csv_duckdb(wh, path)
    finally:
        os.unlink(path)
    return len(lines)


def delete_events(wh: Warehouse, event_ids: Iterable[str]) -> int:
    """Remove every delivery of the given events (for tests of data that disappears)."""
    ids = sorted(set(event_ids))
    if not ids:
        return 0
    table = f"{wh.source_schema}.events"
    if wh.dialect == "spark":
        _delete_events_spark(wh, ids)
        return len(ids)
    for start in range(0, len(ids), 1000):
        chunk = {f"id{i}": value for i, value in enumerate(ids[start : start + 1000])}
        placeholders = ", ".join(wh.param(name) for name in chunk)
        wh.execute(f"delete from {table} where event_id in ({placeholders})", chunk)
    return len(ids)


def _delete_events_spark(wh: Warehouse, ids: list[str]) -> None:
    """Parquet tables cannot delete rows: the rows kept are copied aside and written back."""
    table, kept = f"{wh.source_schema}.events", f"{wh.source_schema}.events__kept"
    params = {f"id{i}": value for i, value in enumerate(ids)}
    placeholders = ", ".join(wh.param(name) for name in params)
    wh.execute(f"drop table if exists {kept}")
    wh.execute(
        f"create table {kept} using parquet as "
        f"select * from {table} where event_id not in ({placeholders})",
        params,
    )
    try:
        wh.execute(f"insert overwrite table {table} select * from {kept}")
    finally:
        wh.execute(f"drop table if exists {kept}")
