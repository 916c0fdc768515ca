"""What each metric call sends to Redis and how its reply is read, free of any I/O.

`Operations` turns a call such as ``increment_counter("hits", 1, {"page": "/"})`` into an `Op`
(script, keys, arguments); the sync and asyncio clients only run them. This is what lets
`RealtimeMetrics` and `AsyncRealtimeMetrics` share scripts, key layout and validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from realtime.availability import unavailable
from realtime.labels import (
    MAX_MAGNITUDE,
    InvalidValueError,
    canonical_labels,
    out_of_range,
    validate_item,
    validate_member,
    validate_name,
    validate_number,
    validate_top_labels,
    validate_window,
)
from realtime.scripts import script_source
from realtime.series import KINDS, MAX_TOP_K, Kind, Series, slot_seconds
from realtime.sketch import HistogramSnapshot, bucket_field, is_bucket_field

Number = int | float
Labels = Mapping[str, str] | None

_SERIES_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Settings:
    """Key prefix and retention choices shared by every call of one client.

    idle_ttl: seconds a counter or gauge lives after it stops being written (None: until
    deleted). The TTL is refreshed when a counter starts a new hour bucket and when a gauge's
    registry marker is renewed, not on every write, so it must be at least two hours.
    counter_hours: hours of per-hour counter increments kept for reconciliation (0: none).
    registry_refresh: how often (seconds) a live series re-announces itself in the registry.
    """

    prefix: str = "rt:"
    idle_ttl: int | None = 7 * 24 * 3600
    counter_hours: int = 26
    registry_refresh: int = 3600

    def __post_init__(self) -> None:
        if self.idle_ttl is not None and self.idle_ttl < max(7200, 2 * self.registry_refresh):
            raise ValueError(
                "idle_ttl must be None or at least 2 hours (and twice registry_refresh): "
                "it is refreshed hourly, not on every write"
            )
        if self.counter_hours < 0:
            raise ValueError("counter_hours must be >= 0")
        if self.registry_refresh < 1:
            raise ValueError("registry_refresh must be >= 1 second")

    def script_source(self, name: str) -> str:
        """A realtime Lua script with these settings baked in."""
        return script_source(name, self.idle_ttl or 0, self.counter_hours, self.registry_refresh)

    @property
    def registry_ttl(self) -> int | None:
        """TTL of the registry sets: outlives every series they list (None with no idle TTL)."""
        if self.idle_ttl is None:
            return None
        return max(self.idle_ttl, 32 * 24 * 3600) + self.registry_refresh


class Op(NamedTuple):
    """One script call: EVALSHA <sha of script> 1 <key> <args...>."""

    script: str
    key: bytes  # encoded once per series: redis-py sends bytes as they are
    args: tuple[str | int | float, ...]
    series: Series


# An Op from its four fields as one tuple, skipping the NamedTuple's Python-level __new__: on
# the writes' hot path it costs about 100 ns instead of 170 (timeit).
_op: Callable[[tuple[str, bytes, tuple[str | int | float, ...], Series]], Op] = partial(
    tuple.__new__, Op
)


def to_number(raw: Any) -> Number:
    """A Redis reply (integer, bytes or str) as int when integral text, else float."""
    if isinstance(raw, int):
        return raw
    text = reply_text(raw)
    try:
        return int(text)
    except ValueError:
        return float(text)


class Operations:
    """Builds validated `Op`s for one `Settings`; caches the key of each series it has seen."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._series: dict[tuple[Any, ...], tuple[Series, bytes]] = {}

    # -- series and keys -------------------------------------------------------------------
    def series(
        self, kind: Kind, name: str, labels: Labels, window: int = 0
    ) -> tuple[Series, bytes]:
        """The validated series and its (encoded) key; raises a RealtimeValidationError subclass.

        Hot path: a dict lookup on (kind, name, window, label items). Only validated series
        are cached, so a hit needs no validation; label sets given in another order get their
        own entry (same series).
        """
        try:
            cache_key = (kind, name, window, tuple(labels.items()) if labels else None)
            hit = self._series.get(cache_key)
        except (AttributeError, TypeError):  # not a mapping, or unhashable values
            cache_key, hit = None, None
        if hit is not None and window.__class__ is int:
            return hit
        if window:
            window = validate_window(window)
        series = Series(kind, validate_name(name), canonical_labels(labels), window)
        result = (series, series.key(self.settings.prefix).encode("utf-8"))
        if cache_key is not None:
            if len(self._series) >= _SERIES_CACHE_SIZE:
                self._series.clear()
            self._series[cache_key] = result
        return result

    def key(self, series: Series) -> str:
        """The series' main key (see realtime.series)."""
        return series.key(self.settings.prefix)

    def _key(self, series: Series) -> bytes:
        return series.key(self.settings.prefix).encode("utf-8")

    # -- writes ----------------------------------------------------------------------------
    def increment_counter(self, name: str, value: Number, labels: Labels) -> Op:
        series, key = self.series("counter", name, labels)
        _check_number(value)
        return _op(("counter_incr", key, (value,), series))

    def set_gauge(self, name: str, value: Number, labels: Labels, unit: str | None) -> Op:
        series, key = self.series("gauge", name, labels)
        _check_number(value)
        if unit is not None and (not isinstance(unit, str) or not unit.isprintable()):
            raise InvalidValueError(f"unit must be a printable string, not {unit!r}")
        return _op(("gauge_set", key, (value, unit or ""), series))

    def add_to_histogram(
        self, name: str, value: Number, window: int, labels: Labels, bucket: bool = True
    ) -> Op:
        """A histogram observation. With `bucket`, its sketch bucket goes along for
        histogram_add.lua and the aggregator (Python's log is cheaper than Lua's); a batch's
        writes leave it out, since batch.lua works it out itself."""
        series, key = self.series("histogram", name, labels, window or _invalid_window(window))
        _check_number(value)
        if bucket:
            return _op(("histogram_add", key, (value, series.window, bucket_field(value)), series))
        return _op(("histogram_add", key, (value, series.window), series))

    def track_rate(self, name: str, window: int, labels: Labels, count: int) -> Op:
        series, key = self.series("rate", name, labels, window or _invalid_window(window))
        if count.__class__ is not int or count < 1:
            raise InvalidValueError(f"count must be a positive int, not {count!r}")
        if count > MAX_MAGNITUDE:
            raise InvalidValueError(out_of_range("count", count))
        return _op(("rate_track", key, (count, series.window), series))

    def track_unique(self, name: str, member: object, window: int, labels: Labels) -> Op:
        series, key = self.series("unique", name, labels, window or _invalid_window(window))
        return Op("unique_add", key, (validate_member(member), series.window), series)

    def track_top(self, name: str, item: object, window: int, labels: Labels) -> Op:
        series, key = self.top_series(name, labels, window)
        return Op("top_add", key, (validate_item(item), series.window), series)

    def top_series(self, name: str, labels: Labels, window: int) -> tuple[Series, bytes]:
        """A top-k series and its key: its labels may not use the items' label."""
        found = self.series("top", name, labels, window or _invalid_window(window))
        validate_top_labels(found[0].labels)
        return found

    def adjust_counter(self, series: Series, delta: Number, hour: int) -> Op:
        """Add `delta` to a counter's total and to its bucket for `hour` (hours since epoch)."""
        return Op("counter_adjust", self._key(series), (delta, hour), series)

    def restore(
        self,
        series: Series,
        value: Number,
        unit: str | None,
        hours: Sequence[tuple[int, Number]] = (),
    ) -> Op:
        """Put back a backed-up counter (with its hour buckets) or gauge; see restore.lua."""
        args: list[str | int | float] = [series.kind, value, unit or ""]
        for hour, amount in hours:
            args.extend((hour, amount))
        return Op("restore", self._key(series), tuple(args), series)

    # -- windowed reads --------------------------------------------------------------------
    def histogram_read(self, series: Series) -> Op:
        return Op("histogram_read", self._key(series), (series.window,), series)

    def rate_read(self, series: Series) -> Op:
        return Op("rate_read", self._key(series), (series.window,), series)

    def unique_read(self, series: Series) -> Op:
        return Op("unique_read", self._key(series), (series.window,), series)

    def top_read(self, series: Series, k: int) -> Op:
        if k.__class__ is not int or not 1 <= k <= MAX_TOP_K:
            raise InvalidValueError(f"k must be an int in [1, {MAX_TOP_K}], not {k!r}")
        return Op("top_read", self._key(series), (series.window, k), series)


def _check_number(value: object) -> None:
    """Accept an int or a finite float within +/-2**53 quickly; anything else goes through full
    validation, which names what is wrong."""
    kind = value.__class__
    if (kind is not int and kind is not float) or not (
        -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE  # type: ignore[operator]
    ):
        validate_number(value)


def _invalid_window(window: object) -> int:
    """A falsy window (0, None, False): always invalid, raise the usual error."""
    return validate_window(window)


# Writes that batch.lua can run, by its operation code.
_WRITE_CODES = {
    "counter_incr": "c",
    "gauge_set": "g",
    "histogram_add": "h",
    "histogram_merge": "m",
    "rate_track": "r",
    "unique_add": "u",
    "top_add": "t",
}
BATCH_CHUNK = 100  # writes per batch.lua call: keeps each call's run time short


class Call(NamedTuple):
    """One EVALSHA in a pipeline: a batch.lua call for several writes, or one op's script."""

    script: str
    keys: tuple[bytes, ...]
    args: tuple[str | int | float, ...]
    indexes: tuple[int, ...]  # positions of the ops it carries
    batched: bool


def plan_calls(ops: Sequence[Op], slot_of: Callable[[bytes], int] | None) -> list[Call]:
    """Group writes into batch.lua calls (at most BATCH_CHUNK each, and per Redis Cluster hash
    slot when `slot_of` is given, since one script may only touch one slot); other ops
    become one call each. Writes to one series keep their order (same slot)."""
    calls: list[Call] = []
    groups: dict[int, list[int]] = {}
    for i, op in enumerate(ops):
        if op.script in _WRITE_CODES:
            groups.setdefault(slot_of(op.key) if slot_of else 0, []).append(i)
        else:
            calls.append(Call(op.script, (op.key,), op.args, (i,), False))
    for indexes in groups.values():
        for start in range(0, len(indexes), BATCH_CHUNK):
            part = indexes[start : start + BATCH_CHUNK]
            args: list[str | int | float] = []
            for i in part:
                op = ops[i]
                args.append(_WRITE_CODES[op.script])
                # Two arguments per write: a counter's one padded, a histogram's bucket left
                # to batch.lua.
                args.extend(op.args[:2] if len(op.args) > 1 else (*op.args, ""))
            calls.append(
                Call("batch", tuple(ops[i].key for i in part), tuple(args), tuple(part), True)
            )
    return calls


def spread_replies(calls: Sequence[Call], replies: Sequence[Any], count: int) -> list[Any]:
    """One reply per op, in op order, from the replies to `plan_calls`' calls (a failed call's
    error is every one of its ops' reply)."""
    result: list[Any] = [None] * count
    for call, reply in zip(calls, replies, strict=True):
        if not call.batched:
            result[call.indexes[0]] = reply
        elif isinstance(reply, Exception):
            for i in call.indexes:
                result[i] = reply
        else:
            for i, item in zip(call.indexes, reply, strict=True):
                result[i] = item
    return result


_COUNTER_SCRIPTS = frozenset({"counter_incr", "counter_adjust"})


def write_reply(op: Op, raw: Any) -> tuple[Number | None, int]:
    """(new counter total or None, registration time or 0) from a write script's reply.

    Counter scripts reply with the total, or [total, time] when the series must be
    registered; the others with 0 or the registration time. Scalars keep replies cheap.
    """
    if raw.__class__ is int:  # the usual reply: skip the type checks below
        return (raw, 0) if op.script in _COUNTER_SCRIPTS else (None, raw)
    if op.script in _COUNTER_SCRIPTS:
        if isinstance(raw, list):
            return to_number(raw[0]), int(raw[1])
        return to_number(raw), 0
    return None, int(raw)


def parse_histogram(raw: Sequence[Any]) -> HistogramSnapshot:
    """A snapshot from histogram_read's reply."""
    count = int(raw[0])
    if not count:
        return HistogramSnapshot.empty()
    buckets: dict[str, int] = {}
    for i in range(4, len(raw), 2):
        name = reply_text(raw[i])
        if is_bucket_field(name):
            buckets[name] = int(raw[i + 1])
    low = None if raw[2] is None else to_number(raw[2])
    high = None if raw[3] is None else to_number(raw[3])
    return HistogramSnapshot(
        count=count, sum=float(reply_text(raw[1])), min=low, max=high, buckets=buckets
    )


def parse_rate(raw: Sequence[Any], window: int) -> float:
    """Events per second over (now - window, now] from rate_read's reply.

    The oldest slot straddles the window's start; it is weighted by the share of it inside the
    window (the usual sliding-window estimate), all other slots count fully.
    """
    now = int(raw[0]) + int(raw[1]) / 1_000_000
    first = int(raw[2])
    slot = slot_seconds(window)
    start = now - window
    total = 0.0
    for offset, value in enumerate(raw[3:]):
        count = int(value)
        if count:
            slot_end = (first + offset + 1) * slot
            total += count * min(1.0, max(0.0, (slot_end - start) / slot))
    return total / window


def parse_top(raw: Sequence[Any]) -> list[tuple[str, int]]:
    """(item, count) pairs, heaviest first, from top_read's reply."""
    return [(reply_text(raw[i]), int(raw[i + 1])) for i in range(0, len(raw), 2)]


class _Unknown:
    """Marker for "Redis unreachable" in reads, distinct from a missing key (None)."""


UNKNOWN: Any = _Unknown()


def reply_text(raw: Any) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def by_kind(items: Sequence[tuple[Series, int]]) -> dict[Kind, dict[str, int]]:
    grouped: dict[Kind, dict[str, int]] = {kind: {} for kind in KINDS}
    for series, registered_at in items:
        grouped[series.kind][series.member] = registered_at
    return {kind: mapping for kind, mapping in grouped.items() if mapping}


class WriteOutcome(NamedTuple):
    """What a pipeline of writes came back with."""

    values: list[Number | None]  # per write: counter total, else None
    registrations: list[tuple[Series, int]]  # series to record in the registry
    error: Exception | None  # the first error Redis gave a write (e.g. WRONGTYPE)
    unreached: list[Op]  # writes that failed because a node was unavailable (cluster)
    unreached_error: Exception | None


def read_writes(ops: Sequence[Op], replies: Sequence[Any]) -> WriteOutcome:
    """Sort the replies of a pipeline of writes into values, registrations and errors."""
    values: list[Number | None] = []
    registrations: list[tuple[Series, int]] = []
    first_error: Exception | None = None
    unreached: list[Op] = []
    unreached_error: Exception | None = None
    for op, reply in zip(ops, replies, strict=True):
        if isinstance(reply, Exception):
            if unavailable(reply):
                unreached.append(op)
                unreached_error = unreached_error or reply
            else:
                first_error = first_error or reply
            values.append(None)
            continue
        value, registered_at = write_reply(op, reply)
        values.append(value)
        if registered_at:
            registrations.append((op.series, registered_at))
    return WriteOutcome(values, registrations, first_error, unreached, unreached_error)


def cluster_slot_function(client: Any) -> Callable[[bytes], int] | None:
    """For a Redis Cluster client (sync or asyncio), the key -> hash slot function."""
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster
    from redis.crc import key_slot

    if isinstance(client, RedisCluster | AsyncRedisCluster):
        return key_slot
    return None
