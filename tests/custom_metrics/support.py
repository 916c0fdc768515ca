"""Test support for custom metrics: generated rows, table loading, plain-Python reference."""

from __future__ import annotations

import json
import math
import random
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import CompiledMetric, compile_metric
from metrics_events.source import COLUMNS as SOURCE_COLUMNS
from metrics_events.source import ensure_source_table
from orchestration.audit_log import ensure_table as ensure_audit_table
from warehouse import Warehouse, WarehouseConfig, connect
from warehouse.audit_table import AUDIT_TABLE

EVENT_TYPES = ["page_view", "click", "purchase", "license_renewal", "asset_used"]
ENTITY_TYPES = ["asset", "license", "org"]
INDUSTRIES = ["retail", "finance", "health", "O'Brien & Co", "café"]
CATEGORIES = ["laptop", "phone", "server"]
TIERS = ["gold", "silver", "bronze"]
START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 59  # Jan 1 .. Feb 28 2025

EVENT_COLUMNS = [
    "event_id",
    "occurred_at",
    "event_date",
    "event_type",
    "actor_id",
    "entity_type",
    "entity_id",
    "revenue_cents",
    "properties",
    "ingested_at",
]
ROLLUP_DIMS = ["entity_type", "entity_id", "event_type"]


def make_events(n: int = 1500, seed: int = 7) -> list[dict[str, Any]]:
    """Deterministic events with NULLs, missing JSON keys and awkward property values."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        occurred = START + timedelta(seconds=rng.randrange(0, DAYS * 86400))
        entity_type = rng.choice(ENTITY_TYPES)
        props: dict[str, Any] | None = None
        if rng.random() > 0.1:
            props = {"category": rng.choice(CATEGORIES), "tier": rng.choice(TIERS)}
            if rng.random() > 0.15:
                props["industry"] = rng.choice(INDUSTRIES)
            props["seats"] = rng.randrange(1, 50)
        rows.append(
            {
                "event_id": f"e{i:05d}",
                "occurred_at": occurred,
                "event_date": occurred.date(),
                "event_type": rng.choice(EVENT_TYPES),
                "actor_id": None if rng.random() < 0.15 else f"u{rng.randrange(120)}",
                "entity_type": entity_type,
                "entity_id": f"{entity_type[0]}{rng.randrange(40)}",
                "revenue_cents": rng.choice([None, None, 0, rng.randrange(1, 100_000)]),
                "properties": props,
                "ingested_at": occurred + timedelta(minutes=rng.randrange(0, 600)),
            }
        )
    return rows


def _num(rng: random.Random, column: str) -> Any:
    if column.endswith("_pct") or column.startswith("avg_"):
        return Decimal(rng.randrange(-50_000, 50_000)) / 100
    if column in ("active_days", "days_in_month"):
        return rng.randrange(1, 29)
    return rng.randrange(0, 1000)


PERIOD_EXTRAS = [
    "active_days",
    "avg_daily_events",
    "avg_daily_revenue_cents",
    "prev_event_count",
    "prev_unique_actors",
    "prev_revenue_cents",
    "event_count_growth_pct",
    "unique_actors_growth_pct",
    "revenue_growth_pct",
]


LEVELS = [
    ("entity_type", "entity_id", "event_type"),
    ("entity_type", "entity_id"),
    ("entity_type", "event_type"),
    ("entity_type",),
    ("event_type",),
    (),
]


def _period_of(day: date, column: str) -> date:
    if column == "week_start":
        return day - timedelta(days=day.weekday())  # weeks from Monday, the default
    if column == "month_start":
        return day.replace(day=1)
    return day


def rollup_rows(
    events: Sequence[Mapping[str, Any]], column: str, extras: Sequence[str], rng: random.Random
) -> list[dict[str, Any]]:
    """The rollup of `events` by `column` at the six levels, as dbt builds it: event count,
    distinct non-NULL actors, revenue (0 where none); extras are random (shape only)."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for row in events:
        period = _period_of(row["event_date"], column)
        for level in LEVELS:
            key = tuple(row[d] if d in level else "*" for d in ROLLUP_DIMS)
            groups[(period, *key)].append(row)
    out = []
    for (period, *key), rows in sorted(groups.items(), key=lambda item: str(item[0])):
        record: dict[str, Any] = {column: period, **dict(zip(ROLLUP_DIMS, key, strict=True))}
        record["event_count"] = len(rows)
        record["unique_actors"] = len({r["actor_id"] for r in rows} - {None})
        record["revenue_cents"] = sum(r["revenue_cents"] or 0 for r in rows)
        for extra in extras:
            if extra.startswith("prev_") or extra.endswith("_growth_pct"):
                record[extra] = None if rng.random() < 0.3 else _num(rng, extra)
            else:
                record[extra] = _num(rng, extra)
        out.append(record)
    return out


def make_rollups(
    events: Sequence[Mapping[str, Any]] | None = None, seed: int = 11
) -> dict[str, list[dict[str, Any]]]:
    """The rollups of `events` (default the session's generated events), so that a definition
    answered from a rollup gives what the events give; the extra columns are random."""
    rng = random.Random(seed)
    rows = make_events() if events is None else events
    return {
        "daily_metrics": rollup_rows(rows, "metric_date", [], rng),
        "weekly_metrics": rollup_rows(rows, "week_start", PERIOD_EXTRAS, rng),
        "monthly_metrics": rollup_rows(rows, "month_start", ["days_in_month", *PERIOD_EXTRAS], rng),
    }


# On Spark the tables are Parquet, not partitioned: dbt partitions them by period, but writing
# and dropping a partition a day costs the test session a minute and a half of metastore work.
_SPARK_TYPES = {"text": "string", "timestamptz": "timestamp", "json": "string"}


def _ddl(dialect: str, schema: str) -> dict[str, str]:
    if dialect == "spark":
        return {
            table: re.sub(r"\b(text|timestamptz|json)\b", lambda m: _SPARK_TYPES[m[1]], ddl)
            + " using parquet"
            for table, ddl in _ddl("duckdb", schema).items()
        }
    json_type = "jsonb" if dialect == "postgres" else "json"
    dims = "entity_type text, entity_id text, event_type text"
    measures = "event_count bigint, unique_actors bigint, revenue_cents bigint"
    extras = (
        "active_days int, avg_daily_events numeric, avg_daily_revenue_cents numeric, "
        "prev_event_count bigint, prev_unique_actors bigint, prev_revenue_cents bigint, "
        "event_count_growth_pct numeric, unique_actors_growth_pct numeric, "
        "revenue_growth_pct numeric"
    )
    if dialect == "duckdb":
        extras = extras.replace("numeric", "decimal(18, 2)")
    return {
        "stg_events": f"create table {schema}.stg_events (event_id text, occurred_at timestamptz, "
        "event_date date, event_type text, actor_id text, entity_type text, entity_id text, "
        f"revenue_cents bigint, properties {json_type}, ingested_at timestamptz)",
        "daily_metrics": f"create table {schema}.daily_metrics (metric_date date, {dims}, "
        f"{measures})",
        "weekly_metrics": f"create table {schema}.weekly_metrics (week_start date, {dims}, "
        f"{measures}, {extras})",
        "monthly_metrics": f"create table {schema}.monthly_metrics (month_start date, {dims}, "
        f"{measures}, days_in_month int, {extras})",
    }


def _insert_spark(
    wh: Warehouse, table: str, rows: Sequence[Mapping[str, Any]], schema: str
) -> None:
    """Spark parses a statement of thousands of parameters slowly: rows go in as a DataFrame
    (`Warehouse.insert_rows`), properties as JSON text; a column a row leaves out is NULL, as
    in an insert that names only some."""
    columns = wh.raw.table(f"{schema}.{table}").columns
    wh.insert_rows(
        f"{schema}.{table}",
        [
            {
                c: json.dumps(row[c])
                if c == "properties" and row.get(c) is not None
                else row.get(c)
                for c in columns
            }
            for row in rows
        ],
    )


def insert_rows(
    wh: Warehouse, table: str, rows: Sequence[Mapping[str, Any]], schema: str | None = None
) -> None:
    """Insert many rows quickly: multi-row VALUES with named parameters, in chunks (into the
    warehouse's schema unless `schema` says otherwise)."""
    if not rows:
        return
    if wh.dialect == "spark":
        _insert_spark(wh, table, rows, schema or wh.schema)
        return
    columns = list(rows[0])
    for offset in range(0, len(rows), 200):
        chunk = rows[offset : offset + 200]
        params: dict[str, Any] = {}
        tuples = []
        for i, row in enumerate(chunk):
            names = []
            for j, column in enumerate(columns):
                value = row[column]
                if column == "properties" and value is not None:
                    value = json.dumps(value)
                params[f"v{i}_{j}"] = value
                names.append(wh.param(f"v{i}_{j}"))
            tuples.append("(" + ", ".join(names) + ")")
        wh.execute(
            f"insert into {schema or wh.schema}.{table} ({', '.join(columns)}) "
            f"values {', '.join(tuples)}",
            params,
        )


def load_sources(
    wh: Warehouse,
    events: Sequence[Mapping[str, Any]],
    rollups: Mapping[str, Sequence[Mapping[str, Any]]],
    built: tuple[date, date] | None = None,
) -> None:
    """Create the four tables in the warehouse's schema and fill them; the events also in the
    source table, and builds of every grain over `built` (default BUILT) in the audit log."""
    wh.execute(f"create schema if not exists {wh.schema}")
    for statement in _ddl(wh.dialect, wh.schema).values():
        wh.execute(statement)
    insert_rows(wh, "stg_events", events)
    for table, rows in rollups.items():
        insert_rows(wh, table, rows)
    if wh.dialect == "spark":
        return  # no job audit log on Spark: the service reads the events (docs/custom_metrics.md)
    load_source_events(wh, events)
    record_builds(wh, built or BUILT, BUILT_AT)


# What the fixtures record as built: every grain's periods from December 2024 to June 2025,
# by builds that started after every generated event arrived.
BUILT = (date(2024, 12, 1), date(2025, 7, 1))
BUILT_AT = datetime(2025, 7, 1, tzinfo=UTC)


def load_source_events(wh: Warehouse, events: Sequence[Mapping[str, Any]]) -> None:
    """The events as the source table holds them (`ingested_at` is what late data is judged
    by), in the warehouse's source schema."""
    ensure_source_table(wh)
    rows = [{c: e[c] for c in SOURCE_COLUMNS} for e in events]
    insert_rows(wh, "events", rows, wh.source_schema)


def record_builds(
    wh: Warehouse,
    period: tuple[date, date],
    started_at: datetime,
    grains: Sequence[str] = ("daily", "weekly", "monthly"),
    status: str = "COMPLETED",
) -> None:
    """Audit-log rows of one build per grain over the periods that meet [start, end) (weeks
    from Monday), as the Dagster jobs write them."""
    ensure_audit_table(wh)
    start, end = period
    windows = {
        "daily": (start, end),
        "weekly": (
            start - timedelta(days=start.weekday()),
            end + timedelta(days=-end.weekday() % 7),
        ),
        "monthly": (start.replace(day=1), end if end.day == 1 else next_month(end)),
    }
    rows = [
        {
            "log_id": uuid.uuid4().hex,
            "job_name": f"{grain}_rollups",
            "grain": grain,
            "partition_range_start": windows[grain][0],
            "partition_range_end": windows[grain][1],
            "window_start": windows[grain][0],
            "window_end": windows[grain][1],
            "status": status,
            "started_at": started_at,
            "dagster_run_id": "fixture",
            "attempt": 1,
        }
        for grain in grains
    ]
    insert_rows(wh, AUDIT_TABLE, rows)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


# ---- the plain-Python reference -------------------------------------------------------


def json_text(props: Mapping[str, Any] | None, key: str) -> str | None:
    """What `properties ->> key` gives on both warehouses for our generated values."""
    if not isinstance(props, Mapping) or props.get(key) is None:
        return None
    value = props[key]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dim_value(row: Mapping[str, Any], name: str) -> Any:
    if name.startswith("properties."):
        return json_text(row.get("properties"), name.split(".", 1)[1])
    return row[name]


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def aggregate(kind: str, values: list[Any], fraction: float | None = None) -> Any:
    """SQL aggregate semantics over one group's values (NULLs ignored)."""
    present = [v for v in values if v is not None]
    if kind == "count_star":
        return len(values)
    if kind == "count":
        return len(present)
    if kind == "distinct":
        return len(set(present))
    if not present:
        return None
    if kind == "sum":
        return sum(present)
    if kind == "avg":
        return sum(Decimal(str(v)) for v in present) / len(present)
    if kind == "max":
        return max(present)
    if kind == "min":
        return min(present)
    if kind == "percentile":
        assert fraction is not None
        return _percentile([float(v) for v in present], fraction)
    raise ValueError(kind)


def reference(
    rows: Iterable[Mapping[str, Any]],
    dimensions: Sequence[str],
    keep: Callable[[Mapping[str, Any]], bool],
    value: Callable[[list[Mapping[str, Any]]], Any],
) -> dict[tuple[Any, ...], Any]:
    """Group the kept rows by the dimensions and compute `value` per group (SQL GROUP BY)."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    kept = [r for r in rows if keep(r)]
    for row in kept:
        groups[tuple(dim_value(row, d) for d in dimensions)].append(row)
    if not dimensions:
        return {(): value(kept)}
    return {key: value(group) for key, group in groups.items()}


def ratio(numerator: Any, denominator: Any) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return float(numerator) / float(denominator)


def window_reference(
    rows: Iterable[Mapping[str, Any]],
    dimensions: Sequence[str],
    keep: Callable[[Mapping[str, Any]], bool],
    value: Callable[[list[Mapping[str, Any]]], Any],
    window: tuple[date, date],
) -> dict[tuple[Any, ...], Any]:
    """The metric over one window of the events, keyed by the dimension values (one row for
    no dimensions even when no event is kept, as the SQL gives)."""
    expected = {
        k[2:]: v for k, v in series_reference(rows, dimensions, keep, value, [window]).items()
    }
    if not dimensions and () not in expected:
        expected[()] = value([])
    return expected


def both_paths(
    wh: Warehouse, definition: Mapping[str, Any], start: Any, end: Any
) -> tuple[CompiledMetric, CompiledMetric]:
    """The definition compiled for `wh` (weeks from Monday) as the rollup-aware path would read
    it, and read from the events."""
    fast = compile_metric(definition, wh.dialect, start, end, schema=wh.schema, week_start_index=0)
    slow = compile_metric(
        definition, wh.dialect, start, end, schema=wh.schema, week_start_index=0, use_rollups=False
    )
    return fast, slow


def answer_of(wh: Warehouse, compiled: CompiledMetric) -> dict[tuple[Any, ...], Any]:
    """A compiled metric's rows on `wh`, keyed by everything before the value."""
    return as_result(wh.query(compiled.sql, compiled.params))


def as_result(rows: Iterable[Sequence[Any]]) -> dict[tuple[Any, ...], Any]:
    return {tuple(r[:-1]): r[-1] for r in rows}


def same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def assert_same(
    actual: Mapping[tuple[Any, ...], Any], expected: Mapping[tuple[Any, ...], Any]
) -> None:
    assert set(actual) == set(expected), (
        f"groups differ: only in SQL {set(actual) - set(expected)}, "
        f"only in Python {set(expected) - set(actual)}"
    )
    wrong = {
        k: (actual[k], expected[k]) for k in expected if not same_number(actual[k], expected[k])
    }
    assert not wrong, f"values differ (sql, python): {wrong}"


def in_period(column: str, start: Any, end: Any) -> Callable[[Mapping[str, Any]], bool]:
    return lambda r: start <= r[column] < end


def utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def grain_periods(
    start: date, end: date, grain: str | None, week_start: int = 0
) -> list[tuple[date, date]]:
    """[start, end) cut at day / week (starting on `week_start`, 0 = Monday) / month starts."""
    if grain is None:
        return [(start, end)]
    out: list[tuple[date, date]] = []
    cursor = start
    while cursor < end:
        if grain == "day":
            following = cursor + timedelta(days=1)
        elif grain == "week":
            following = cursor + timedelta(days=7 - (cursor.weekday() - week_start) % 7)
        else:
            following = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        out.append((cursor, min(following, end)))
        cursor = min(following, end)
    return out


def series_reference(
    rows: Iterable[Mapping[str, Any]],
    dimensions: Sequence[str],
    keep: Callable[[Mapping[str, Any]], bool],
    value: Callable[[list[Mapping[str, Any]]], Any],
    periods: Sequence[tuple[date, date]],
    lookback_days: int | None = None,
) -> dict[tuple[Any, ...], Any]:
    """Per period (s, e) of the events: the metric over [e - lookback_days, e), or [s, e);
    keys are (s, e, *dimension values)."""
    kept = [r for r in rows if keep(r)]
    out: dict[tuple[Any, ...], Any] = {}
    for s, e in periods:
        lo = utc(e - timedelta(days=lookback_days) if lookback_days else s)
        window = in_period("occurred_at", lo, utc(e))
        for key, got in reference(kept, dimensions, window, value).items():
            out[(s, e, *key)] = got
    return out


# ---- connections ---------------------------------------------------------------------


def duckdb_warehouse(path: Path, schema: str = "metrics") -> Warehouse:
    import duckdb

    config = WarehouseConfig(
        target="duckdb", duckdb_path=str(path), schema=schema, source_schema=f"{schema}_src"
    )
    raw = duckdb.connect(str(path))
    raw.execute("set timezone = 'UTC'")
    return Warehouse(config, raw)


def spark_warehouse(dirs: Mapping[str, str], schema: str) -> Warehouse:
    """The process's Spark session on the test run's directories (tests/conftest.py
    spark_dirs), with `schema` as the metrics schema."""
    config = WarehouseConfig(
        target="spark",
        spark_warehouse_dir=dirs["METRICS_SPARK_WAREHOUSE_DIR"],
        spark_metastore_dir=dirs["METRICS_SPARK_METASTORE_DIR"],
        spark_metastore_url=dirs["METRICS_SPARK_METASTORE_URL"],
        schema=schema,
        week_start="monday",
    )
    return connect(config)


def postgres_warehouse(params: dict[str, str], schema: str) -> Warehouse:
    import psycopg2

    config = WarehouseConfig(target="postgres", schema=schema, source_schema=f"{schema}_src")
    raw = psycopg2.connect(options="-c timezone=UTC", connect_timeout=10, **params)
    raw.autocommit = True
    return Warehouse(config, raw)


# ---- recording what reaches the database ----------------------------------------------


class _Statements(list[str]):
    """The statements seen so far; calls a hook as each one arrives."""

    def __init__(self, hook: Callable[[str], None] | None) -> None:
        super().__init__()
        self.hook = hook

    def append(self, sql: str) -> None:
        super().append(sql)
        if self.hook is not None:
            self.hook(sql)


class RecordingRaw:
    """Wraps a driver connection and records every statement sent through it (and tells
    `on_execute`, if given, before each one runs)."""

    def __init__(self, raw: Any, on_execute: Callable[[str], None] | None = None) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "statements", _Statements(on_execute))

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.statements.append(sql)
        return self._raw.execute(sql, *args, **kwargs)

    def executemany(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.statements.append(sql)
        return self._raw.executemany(sql, *args, **kwargs)

    def sql(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        """A SparkSession's way in."""
        self.statements.append(sql)
        return self._raw.sql(sql, *args, **kwargs)

    def cursor(self) -> Any:
        return RecordingCursor(self._raw.cursor(), self.statements)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)


class RecordingCursor:
    def __init__(self, cursor: Any, statements: list[str]) -> None:
        self._cursor = cursor
        self._statements = statements

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._statements.append(sql)
        result = self._cursor.execute(sql, *args, **kwargs)
        return self if result is self._cursor else result

    def __enter__(self) -> RecordingCursor:
        self._cursor.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


# ---- a warehouse of one's own, loaded with given events --------------------------------


def service_paths(request: pytest.FixtureRequest, wh: Warehouse, chosen: str) -> bool:
    """Whether a case also goes through the service (test run, create, calculate, stored
    values): always on DuckDB and PostgreSQL; on Spark, where every statement costs a second or
    more, only for the case whose id contains `chosen` (each case still runs its compiled query,
    the SQL the service would run)."""
    return wh.dialect != "spark" or chosen in request.node.callspec.id


def connection_params(request: pytest.FixtureRequest, dialect: str) -> dict[str, str] | None:
    """What `own_warehouse` needs to reach `dialect`: this run's PostgreSQL database or Spark
    directories (fixtures), nothing for DuckDB."""
    if dialect == "postgres":
        return dict(request.getfixturevalue("pg_database"))
    if dialect == "spark":
        return dict(request.getfixturevalue("spark_dirs"))
    return None


@contextmanager
def own_warehouse(
    dialect: str,
    folder: Path,
    params: dict[str, str] | None,
    events: Sequence[Mapping[str, Any]],
) -> Iterator[Warehouse]:
    """A fresh DuckDB file, PostgreSQL schema or Spark schema holding `events` (empty rollups);
    dropped after. `params`: connection_params for PostgreSQL and Spark."""
    if dialect == "duckdb":
        wh = duckdb_warehouse(folder / f"own_{uuid.uuid4().hex[:8]}.duckdb")
    elif dialect == "spark":
        assert params is not None
        wh = spark_warehouse(params, f"cmo_{uuid.uuid4().hex[:8]}")
    else:
        assert params is not None
        wh = postgres_warehouse(params, f"cmo_{uuid.uuid4().hex[:8]}")
    load_sources(wh, events, {})
    try:
        yield wh
    finally:
        if wh.dialect in ("postgres", "spark"):
            wh.execute(f"drop schema {wh.schema} cascade")
        wh.close()


def event(
    index: int | str,
    at: datetime,
    event_type: str,
    actor_id: str | None,
    entity_id: str = "a1",
    revenue_cents: int | None = None,
) -> dict[str, Any]:
    """One hand-made event row."""
    return {
        "event_id": f"x{index}",
        "occurred_at": at,
        "event_date": at.astimezone(UTC).date(),
        "event_type": event_type,
        "actor_id": actor_id,
        "entity_type": "asset",
        "entity_id": entity_id,
        "revenue_cents": revenue_cents,
        "properties": None,
        "ingested_at": at,
    }


def percent(numerator: Any, denominator: Any) -> Decimal | None:
    """round(100 * n / d, 2) half away from zero with decimals; None when d is None or 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    value = Decimal(100) * Decimal(str(numerator)) / Decimal(str(denominator))
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
