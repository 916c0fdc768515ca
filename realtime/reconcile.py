"""Hourly reconciliation of event-mirroring counters against the warehouse's events.

A `CounterMapping` says "this counter (name, labels) counts the events of
``{METRICS_SCHEMA}.stg_events`` matching these filters". Every counter keeps its increments per
UTC hour (for `counter_hours` hours, see realtime.series), so the last N complete hours can be
compared one by one with ``count(distinct event_id)`` of the matching events in that hour.
A difference is added to both the hour bucket and the total in Redis (an INCRBY, so concurrent
increments are never overwritten) and every compared hour is recorded in
``{METRICS_SCHEMA}.realtime_reconciliation_log``.

Hours are attributed by Redis' clock when the counter was incremented and by `occurred_at` in
the warehouse; an increment made just after an hour boundary for an event just before it moves
one count between two hours, which reconciliation then shifts back (the total is unaffected).
Hours at or after the newest event in the warehouse are not compared: the warehouse may not
have loaded them yet, and "no events there" would wrongly erase live counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from realtime.operations import Number, reply_text, to_number, write_reply
from realtime.persistence import open_warehouse
from realtime.registry import redis_now
from realtime.series import Series
from warehouse import Warehouse
from warehouse.timestamps import as_utc

if TYPE_CHECKING:
    from realtime.metrics import RealtimeMetrics

EVENTS_TABLE = "stg_events"
LOG_TABLE = "realtime_reconciliation_log"
FILTER_COLUMNS = frozenset({"event_type", "actor_id", "entity_type", "entity_id"})


@dataclass(frozen=True)
class CounterMapping:
    """A counter that mirrors events: per hour it should equal the number of matching events.

    filters: column -> value or list of values, columns among event_type, actor_id,
    entity_type and entity_id (all conditions must hold).
    """

    name: str
    filters: Mapping[str, str | Sequence[str]]
    labels: Mapping[str, str] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.filters:
            raise ValueError(f"mapping for {self.name!r} needs at least one filter")
        for column, value in self.filters.items():
            if column not in FILTER_COLUMNS:
                raise ValueError(
                    f"mapping for {self.name!r}: filter column {column!r} is not one of "
                    f"{sorted(FILTER_COLUMNS)}"
                )
            values = [value] if isinstance(value, str) else list(value)
            if not values or not all(isinstance(v, str) for v in values):
                raise ValueError(
                    f"mapping for {self.name!r}: filter {column!r} needs a string or a "
                    "non-empty list of strings"
                )


@dataclass(frozen=True)
class HourDrift:
    """What one reconciliation found for one counter and one hour."""

    name: str
    labels: str
    hour_start: datetime
    redis_value: Number
    warehouse_value: int
    drift: Number
    corrected: bool


def reconcile(
    rt: RealtimeMetrics,
    warehouse: Warehouse | None,
    mappings: Sequence[CounterMapping],
    *,
    hours: int = 24,
    correct: bool = True,
) -> list[HourDrift]:
    """Compare the last `hours` complete hours of each mapped counter with the warehouse,
    correct the drift in Redis (unless ``correct=False``) and log every compared hour."""
    if not 1 <= hours < rt.settings.counter_hours:
        raise ValueError(
            f"hours must be in [1, {rt.settings.counter_hours - 1}] (counter_hours - 1), "
            f"not {hours}"
        )
    series = [rt.ops.series("counter", m.name, m.labels)[0] for m in mappings]
    now_hour = int(redis_now(rt)) // 3600
    with open_warehouse(warehouse, reads=(EVENTS_TABLE, LOG_TABLE)) as wh:
        newest = _newest_event_epoch(wh)
        end_hour = now_hour if newest is None else min(now_hour, int(newest) // 3600)
        start_hour = now_hour - hours
        truth = [_event_counts(wh, m, start_hour, end_hour) for m in mappings]
        in_redis = rt.execute_commands([("HGETALL", rt.ops.key(s) + ":h") for s in series])
        findings: list[HourDrift] = []
        adjustments = []
        for counter, expected, stored in zip(series, truth, in_redis, strict=True):
            stored_by_hour = {int(reply_text(h)): to_number(v) for h, v in (stored or {}).items()}
            for hour in range(start_hour, end_hour):
                redis_value = stored_by_hour.get(hour, 0)
                drift = expected.get(hour, 0) - redis_value
                if drift and correct:
                    adjustments.append(rt.ops.adjust_counter(counter, drift, hour))
                findings.append(
                    _finding(
                        counter,
                        hour,
                        redis_value,
                        expected.get(hour, 0),
                        drift,
                        bool(drift) and correct,
                    )
                )
        replies = rt.execute_many(adjustments)
        registrations = [
            (op.series, write_reply(op, reply)[1])
            for op, reply in zip(adjustments, replies, strict=True)
        ]
        rt.register([(series, at) for series, at in registrations if at])
        _log(wh, rt.settings.prefix, findings)
    return findings


def _finding(
    series: Series, hour: int, redis_value: Number, expected: int, drift: Number, fixed: bool
) -> HourDrift:
    return HourDrift(
        name=series.name,
        labels=series.labels,
        hour_start=datetime.fromtimestamp(hour * 3600, UTC),
        redis_value=redis_value,
        warehouse_value=expected,
        drift=drift,
        corrected=fixed,
    )


def _newest_event_epoch(wh: Warehouse) -> float | None:
    if not wh.table_exists(wh.schema, EVENTS_TABLE):
        raise LookupError(
            f"{wh.schema}.{EVENTS_TABLE} does not exist: build the warehouse (dbt) before "
            "reconciling realtime counters"
        )
    rows = wh.query(f"select max(occurred_at) from {wh.schema}.{EVENTS_TABLE}")
    return None if rows[0][0] is None else as_utc(rows[0][0]).timestamp()


def _event_counts(
    wh: Warehouse, mapping: CounterMapping, start_hour: int, end_hour: int
) -> dict[int, int]:
    """Distinct matching events per hour index in [start_hour, end_hour). The hours are
    `date_trunc` of occurred_at in the session's zone, which is UTC on every warehouse."""
    if end_hour <= start_hour:
        return {}
    p = wh.param
    params: dict[str, Any] = {
        "start": datetime.fromtimestamp(start_hour * 3600, UTC),
        "end": datetime.fromtimestamp(end_hour * 3600, UTC),
    }
    conditions = []
    for n, (column, value) in enumerate(sorted(mapping.filters.items())):
        values = [value] if isinstance(value, str) else list(value)
        names = [f"f{n}_{i}" for i in range(len(values))]
        params.update(zip(names, values, strict=True))
        conditions.append(f"{column} in ({', '.join(p(name) for name in names)})")
    rows = wh.query(
        "select date_trunc('hour', occurred_at) as hour, count(distinct event_id)"
        f" from {wh.schema}.{EVENTS_TABLE}"
        f" where occurred_at >= {p('start')} and occurred_at < {p('end')}"
        f" and {' and '.join(conditions)}"
        " group by 1",
        params,
    )
    return {int(as_utc(hour).timestamp()) // 3600: int(count) for hour, count in rows}


def _log(wh: Warehouse, prefix: str, findings: Sequence[HourDrift]) -> None:
    """Append every compared hour to the log table (created if missing), in one transaction
    (on Spark, one statement)."""
    wh.execute(f"create schema if not exists {wh.schema}")
    if wh.dialect == "spark":  # a Parquet table: Spark's type names, no constraints
        columns = (
            "key_prefix string, name string, labels string, hour_start timestamp,"
            " redis_value double, warehouse_value bigint, drift double, corrected boolean,"
            " reconciled_at timestamp"
        )
        wh.execute(f"create table if not exists {wh.schema}.{LOG_TABLE} ({columns}) using parquet")
    else:
        wh.execute(
            f"create table if not exists {wh.schema}.{LOG_TABLE} ("
            " key_prefix text not null, name text not null, labels text not null,"
            " hour_start timestamptz not null, redis_value double precision not null,"
            " warehouse_value bigint not null, drift double precision not null,"
            " corrected boolean not null, reconciled_at timestamptz not null)"
        )
    if not findings:
        return
    now = datetime.now(UTC)
    rows = [
        {
            "key_prefix": prefix,
            "name": f.name,
            "labels": f.labels,
            "hour_start": f.hour_start,
            "redis_value": float(f.redis_value),
            "warehouse_value": f.warehouse_value,
            "drift": float(f.drift),
            "corrected": f.corrected,
            "reconciled_at": now,
        }
        for f in findings
    ]
    with wh.transaction():
        wh.insert_rows(f"{wh.schema}.{LOG_TABLE}", rows)
