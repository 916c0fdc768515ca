"""Backup of counters and gauges to the warehouse, and their restore after a Redis restart.

Table ``{METRICS_SCHEMA}.realtime_metrics_cache``, one snapshot per key prefix (a backup
replaces the prefix's rows in one transaction; on Spark, which has no transactions, by
rewriting the prefix's partition):

    key_prefix    text         the RealtimeMetrics key prefix (several apps may share a table)
    metric_kind   text         'counter' | 'counter_hour' | 'gauge'
    name, labels  text         metric name and canonical label text
    bucket_start  timestamptz  counter_hour only: the UTC hour of those increments
    value         double precision
    unit          text         gauges only
    backed_up_at  timestamptz

Counters' hour buckets are backed up too, so that after a restore reconciliation compares
like with like. Restore is idempotent: each backed-up counter carries a ':b' sentinel key in
Redis; only counters whose sentinel is gone (Redis lost them) are restored, by *adding* the
backed-up value so increments made since the restart are kept. Gauges are restored only where
no newer value was set. Values are doubles: integers are exact up to 2**53, the largest
magnitude realtime accepts.

A backup never replaces a snapshot with what a restarted Redis holds: each backup records
Redis's ``run_id`` (``{METRICS_SCHEMA}.realtime_backup_runs``, one row per key prefix), and a
backup that finds another ``run_id`` (Redis restarted since, and may have lost the counters)
restores first, then takes its snapshot of the restored counters.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from realtime.operations import Number, reply_text, to_number
from realtime.series import Series
from warehouse import Warehouse, WarehouseConfig, connection
from warehouse.spark import rewrite_partition
from warehouse.timestamps import as_utc

if TYPE_CHECKING:
    from realtime.metrics import RealtimeMetrics

TABLE = "realtime_metrics_cache"
RUNS_TABLE = "realtime_backup_runs"

logger = logging.getLogger("realtime.persistence")


class RedisRestartedError(RuntimeError):
    """Redis restarted while a backup was reading it; nothing was written."""


# On Spark, whose Parquet tables can neither delete nor update rows, both tables are
# partitioned by key prefix and a backup rewrites its prefix's partitions.
_SPARK_TABLES: Final = {
    TABLE: "metric_kind string, name string, labels string, bucket_start timestamp,"
    " value double, unit string, backed_up_at timestamp, key_prefix string",
    RUNS_TABLE: "redis_run_id string, backed_up_at timestamp, key_prefix string",
}
# The backup table's columns, the keys of each snapshot row (`_row`).
_COLUMNS: Final = (
    "key_prefix", "metric_kind", "name", "labels", "bucket_start", "value", "unit", "backed_up_at"
)  # fmt: skip


def ensure_table(wh: Warehouse) -> None:
    """Create the schema and the backup table if missing."""
    wh.execute(f"create schema if not exists {wh.schema}")
    if wh.dialect == "spark":
        for table, columns in _SPARK_TABLES.items():
            wh.execute(
                f"create table if not exists {wh.schema}.{table} ({columns})"
                " using parquet partitioned by (key_prefix)"
            )
        return
    wh.execute(
        f"create table if not exists {wh.schema}.{TABLE} ("
        " key_prefix text not null, metric_kind text not null, name text not null,"
        " labels text not null, bucket_start timestamptz, value double precision not null,"
        " unit text, backed_up_at timestamptz not null)"
    )
    wh.execute(
        f"create table if not exists {wh.schema}.{RUNS_TABLE} ("
        " key_prefix text not null, redis_run_id text not null,"
        " backed_up_at timestamptz not null)"
    )


def redis_run_id(rt: RealtimeMetrics) -> str:
    """Redis's ``run_id``: a new one after every restart (all nodes' ids on a cluster)."""
    info = rt.client.info("server")
    if "run_id" in info:
        return str(info["run_id"])
    return ",".join(sorted(str(node["run_id"]) for node in info.values() if "run_id" in node))


def last_run_id(wh: Warehouse, prefix: str) -> str | None:
    """The ``run_id`` of the Redis the prefix's last backup read, if any."""
    rows = wh.query(
        f"select redis_run_id from {wh.schema}.{RUNS_TABLE} where key_prefix = {wh.param('p')}",
        {"p": prefix},
    )
    return str(rows[0][0]) if rows else None


def backup_to_warehouse(rt: RealtimeMetrics, warehouse: Warehouse | None = None) -> dict[str, int]:
    """Snapshot every registered counter (with its hour buckets) and gauge into the warehouse.

    Opens the warehouse from the environment when none is given. Returns row counts by kind,
    and ``restored`` (series put back) when Redis had restarted since the last backup.
    """
    with open_warehouse(warehouse, (TABLE, RUNS_TABLE)) as wh:
        ensure_table(wh)
        run_id = redis_run_id(rt)
        restored: int | None = None
        last = last_run_id(wh, rt.settings.prefix)
        if last is not None and last != run_id:
            restored = restore_from_warehouse(rt, wh)
            logger.warning(
                "Redis restarted since the last realtime backup of %r: restored %d series "
                "before taking the new snapshot",
                rt.settings.prefix,
                restored,
            )
        rows, kept = _snapshot(rt)
        if redis_run_id(rt) != run_id:
            raise RedisRestartedError(
                "Redis restarted while the realtime backup read it; nothing was written: "
                "run the backup again (it restores first)"
            )
        # Mark what this backup holds before committing it: a restore then never re-adds a
        # counter that Redis still has (see the module docstring).
        idle = rt.settings.idle_ttl
        rt.execute_commands(
            [("SET", rt.ops.key(s) + ":b", "1", *(("EX", idle) if idle else ())) for s in kept]
        )
        if wh.dialect == "spark":
            _write_spark(wh, rt.settings.prefix, rows, run_id)
        else:
            _write(wh, rt.settings.prefix, rows, run_id)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["metric_kind"]] += 1
    if restored is not None:
        counts["restored"] = restored
    return dict(counts)


def _write(wh: Warehouse, prefix: str, rows: list[dict[str, Any]], run_id: str) -> None:
    """Replace the prefix's snapshot and its Redis run_id in one transaction."""
    p = wh.param
    with wh.transaction():
        wh.execute(
            f"delete from {wh.schema}.{TABLE} where key_prefix = {p('prefix')}",
            {"prefix": prefix},
        )
        wh.insert_rows(f"{wh.schema}.{TABLE}", rows)
        wh.execute(
            f"delete from {wh.schema}.{RUNS_TABLE} where key_prefix = {p('prefix')}",
            {"prefix": prefix},
        )
        wh.execute(
            f"insert into {wh.schema}.{RUNS_TABLE} (key_prefix, redis_run_id, backed_up_at)"
            f" values ({p('prefix')}, {p('run')}, current_timestamp)",
            {"prefix": prefix, "run": run_id},
        )


def _write_spark(wh: Warehouse, prefix: str, rows: list[dict[str, Any]], run_id: str) -> None:
    """Replace the prefix's partitions: the snapshot first, then its Redis run_id (Spark has
    no transactions: a backup cut short between the two leaves the new snapshot under the
    previous run_id, which the next backup replaces). Each is one write that replaces the
    partition when it commits (warehouse.spark.rewrite_partition), whatever its size."""
    schema = wh.schema
    rewrite_partition(wh, f"{schema}.{TABLE}", _COLUMNS, "key_prefix", prefix, rows)
    run = {"redis_run_id": run_id, "backed_up_at": datetime.now(UTC)}
    columns = ("redis_run_id", "backed_up_at", "key_prefix")
    rewrite_partition(wh, f"{schema}.{RUNS_TABLE}", columns, "key_prefix", prefix, [run])


def _snapshot(rt: RealtimeMetrics) -> tuple[list[dict[str, Any]], list[Series]]:
    """The rows of a backup (counters, their hour buckets and gauges, as Redis holds them now)
    and the counters they hold."""
    counters = [series for series, _ in rt.series_of("counter")]
    gauges = [series for series, _ in rt.series_of("gauge")]
    key = rt.ops.key
    replies = rt.execute_commands(
        [("GET", key(s)) for s in counters]
        + [("HGETALL", key(s) + ":h") for s in counters]
        + [("HMGET", key(s), "v", "u") for s in gauges]
    )
    totals = replies[: len(counters)]
    hours = replies[len(counters) : 2 * len(counters)]
    gauge_values = replies[2 * len(counters) :]
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    kept: list[Series] = []
    for series, total, buckets in zip(counters, totals, hours, strict=True):
        if total is None:
            continue  # expired since it was registered
        kept.append(series)
        rows.append(_row(rt, series, "counter", to_number(total), None, None, now))
        for hour, value in (buckets or {}).items():
            hour_start = datetime.fromtimestamp(int(reply_text(hour)) * 3600, UTC)
            rows.append(_row(rt, series, "counter_hour", to_number(value), hour_start, None, now))
    for series, (value, unit) in zip(gauges, gauge_values, strict=True):
        if value is not None:
            unit_text = reply_text(unit) if unit is not None else None
            rows.append(_row(rt, series, "gauge", to_number(value), None, unit_text, now))
    return rows, kept


def restore_from_warehouse(rt: RealtimeMetrics, warehouse: Warehouse | None = None) -> int:
    """Put back the last backup's counters and gauges that Redis has lost; returns how many
    series were restored (0 when Redis still has them all). Safe to run at any time."""
    with open_warehouse(warehouse, (TABLE,)) as wh:
        ensure_table(wh)
        rows = wh.query(
            "select metric_kind, name, labels, bucket_start, value, unit"
            f" from {wh.schema}.{TABLE} where key_prefix = {wh.param('prefix')}",
            {"prefix": rt.settings.prefix},
        )
    totals: dict[tuple[str, str], Number] = {}
    hours: dict[tuple[str, str], list[tuple[int, Number]]] = defaultdict(list)
    gauges: list[tuple[Series, Number, str | None]] = []
    for kind, name, labels, bucket_start, value, unit in rows:
        if kind == "counter":
            totals[(name, labels)] = _exact(value)
        elif kind == "counter_hour":
            hour = int(as_utc(bucket_start).timestamp()) // 3600
            hours[(name, labels)].append((hour, _exact(value)))
        elif kind == "gauge":
            gauges.append((Series("gauge", name, labels), _exact(value), unit))
    ops = [
        rt.ops.restore(Series("counter", name, labels), value, None, sorted(hours[(name, labels)]))
        for (name, labels), value in totals.items()
    ] + [rt.ops.restore(series, value, unit) for series, value, unit in gauges]
    replies = rt.execute_many(ops)
    restored = [
        (op.series, int(reply[1]))
        for op, reply in zip(ops, replies, strict=True)
        if int(reply[0]) == 1
    ]
    rt.register([(series, at) for series, at in restored if at])
    return len(restored)


def _row(
    rt: RealtimeMetrics,
    series: Series,
    kind: str,
    value: Number,
    bucket: datetime | None,
    unit: str | None,
    at: datetime,
) -> dict[str, Any]:
    """One row of the backup table, keyed by its columns (_COLUMNS)."""
    return {
        "key_prefix": rt.settings.prefix,
        "metric_kind": kind,
        "name": series.name,
        "labels": series.labels,
        "bucket_start": bucket,
        "value": float(value),
        "unit": unit,
        "backed_up_at": at,
    }


def _exact(value: Any) -> Number:
    """A stored double back as int when it is a whole number (so INCRBY stays exact)."""
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


@contextmanager
def open_warehouse(
    warehouse: Warehouse | None, reads: Sequence[str] | None = None
) -> Iterator[Warehouse]:
    """Use the given warehouse, or open (and afterwards close) one from the environment; on
    Spark that one first reads afresh the tables named in `reads` (``schema.table`` names in
    METRICS_SCHEMA; None: every table), which other processes may have rewritten."""
    if warehouse is not None:
        yield warehouse
        return
    config = WarehouseConfig()
    tables = None if reads is None else [f"{config.schema}.{table}" for table in reads]
    with connection.open_warehouse(config, reads=tables) as wh:
        yield wh
