"""The source table `{METRICS_SOURCE_SCHEMA}.events` (docs/reference.md): create, load, delete.

The application owns this table; these helpers are for the demo, the tests and benchmarks.
Loading goes through CSV and COPY on both warehouses: millions of rows in seconds.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
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
    json_type = "jsonb" if wh.dialect == "postgres" else "json"
    schema = wh.source_schema
    wh.execute(f"create schema if not exists {schema}")
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
        return
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


def _copy(wh: Warehouse, lines: Sequence[str]) -> int:
    if wh.dialect == "postgres":
        _copy_postgres(wh, io.StringIO("".join(lines)))
        return len(lines)
    handle, path = tempfile.mkstemp(suffix=".csv", prefix="events_")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.writelines(lines)
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
    for start in range(0, len(ids), 1000):
        chunk = {f"id{i}": value for i, value in enumerate(ids[start : start + 1000])}
        placeholders = ", ".join(wh.param(name) for name in chunk)
        wh.execute(f"delete from {table} where event_id in ({placeholders})", chunk)
    return len(ids)
