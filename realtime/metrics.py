"""`RealtimeMetrics`: counters, gauges, histograms and rates in Redis, one round trip per write.

Failure policy (docs/reference.md). With ``fail_open=True`` (the default) a write that cannot reach
Redis does not raise: it goes to a bounded in-process buffer (`realtime.buffer`) and is replayed,
in order, before the next write that finds Redis reachable again, or by `flush_buffer()`.
After a failure, Redis is not tried again for `retry_interval` seconds, so an outage costs the
application one timeout, not one per call. Reads under fail open return None ("unknown", never a
misleading 0) and count a read error. With ``fail_open=False`` every Redis error raises.

Replayed window writes (histograms, rates) land in the time slot of the replay: Redis' clock
is the only clock. A connection lost in the middle of a replay may apply a write twice
(at-least-once); counters are corrected by `realtime.reconcile`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError
from redis.retry import Retry

from realtime.async_metrics import AsyncRealtimeMetrics
from realtime.availability import UNAVAILABLE_ERRORS
from realtime.batch import Batch
from realtime.client_state import ClientState
from realtime.kernel_timeout import pool_options
from realtime.labels import validate_window
from realtime.operations import (
    UNKNOWN,
    Call,
    Labels,
    Number,
    Op,
    by_kind,
    parse_histogram,
    parse_rate,
    plan_calls,
    read_writes,
    reply_text,
    spread_replies,
    to_number,
    write_reply,
)
from realtime.series import Kind, Series, registry_key
from realtime.sketch import HistogramSnapshot

__all__ = ["AsyncRealtimeMetrics", "Batch", "RealtimeMetrics"]

logger = logging.getLogger("realtime.metrics")

REPLAY_CHUNK = 500
SCAN_COUNT = 1000


class RealtimeMetrics(ClientState):
    """Live metrics on a Redis (or Redis Cluster) client; see the module docstring for failures.

    `client` is a `redis.Redis` or `redis.cluster.RedisCluster`; `from_url` builds one with a
    bounded connection pool and timeouts.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "rt:",
        fail_open: bool = True,
        buffer_size: int = 10_000,
        retry_interval: float = 1.0,
        idle_ttl: int | None = 7 * 24 * 3600,
        counter_hours: int = 26,
        registry_refresh: int = 3600,
    ) -> None:
        super().__init__(
            client,
            prefix=prefix,
            fail_open=fail_open,
            buffer_size=buffer_size,
            retry_interval=retry_interval,
            idle_ttl=idle_ttl,
            counter_hours=counter_hours,
            registry_refresh=registry_refresh,
        )
        self._replay_lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "rt:",
        fail_open: bool = True,
        buffer_size: int = 10_000,
        max_connections: int = 32,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 1.0,
        pool_timeout: float = 1.0,
        cluster: bool = False,
        retry_interval: float = 1.0,
        idle_ttl: int | None = 7 * 24 * 3600,
        counter_hours: int = 26,
        registry_refresh: int = 3600,
        **redis_options: Any,
    ) -> RealtimeMetrics:
        """Connect to `url` with a bounded pool (`max_connections`, waiting at most
        `pool_timeout` for a free connection) and socket timeouts; one quick retry, no backoff
        (the write buffer, not sleeping, absorbs outages). ``cluster=True`` uses RedisCluster.
        """
        options: dict[str, Any] = {
            "socket_connect_timeout": socket_connect_timeout,
            "retry": Retry(NoBackoff(), 1),
            **redis_options,
        }
        client: Any
        if cluster:
            from redis.cluster import RedisCluster

            client = RedisCluster.from_url(
                url, max_connections=max_connections, socket_timeout=socket_timeout, **options
            )
        else:
            # The socket timeout is a kernel option where possible (realtime.kernel_timeout):
            # the same bound, without a poll() before every send and receive.
            timeouts = pool_options(url, socket_timeout)
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_timeout, **(timeouts | options)
            )
            client = redis.Redis(connection_pool=pool)
        return cls(
            client,
            prefix=prefix,
            fail_open=fail_open,
            buffer_size=buffer_size,
            retry_interval=retry_interval,
            idle_ttl=idle_ttl,
            counter_hours=counter_hours,
            registry_refresh=registry_refresh,
        )

    # -- the contract's methods ------------------------------------------------------------
    def increment_counter(
        self, name: str, value: Number = 1, labels: Labels = None
    ) -> Number | None:
        """Add `value` to a counter; returns the new total (None when the write was buffered)."""
        return self._write(self.ops.increment_counter(name, value, labels))

    def get_counter(self, name: str, labels: Labels = None) -> Number | None:
        """Current total (0 if never written; None if Redis is unreachable under fail open)."""
        _, key = self.ops.series("counter", name, labels)
        raw = self._read(self.client.get, key)
        if raw is UNKNOWN:
            return None
        return 0 if raw is None else to_number(raw)

    def set_gauge(
        self, name: str, value: Number, labels: Labels = None, unit: str | None = None
    ) -> None:
        """Set a gauge to `value`; `unit` (e.g. "ms") is kept until another unit is given."""
        self._write(self.ops.set_gauge(name, value, labels, unit))

    def get_gauge(self, name: str, labels: Labels = None) -> Number | None:
        """The gauge's value, or None if never set (or Redis is unreachable under fail open)."""
        _, key = self.ops.series("gauge", name, labels)
        raw = self._read(self.client.hget, key, "v")
        return None if raw is None or raw is UNKNOWN else to_number(raw)

    def add_to_histogram(
        self, name: str, value: Number, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        """Record one observation in the histogram's sliding window."""
        self._write(self.ops.add_to_histogram(name, value, window_seconds, labels))

    def get_histogram(
        self, name: str, window_seconds: int = 300, labels: Labels = None
    ) -> HistogramSnapshot | None:
        """Count, sum, min, max, mean and percentiles over the last `window_seconds` (plus up to
        one slot, a thirtieth of the window); None if Redis is unreachable under fail open."""
        window = validate_window(window_seconds)
        series, _ = self.ops.series("histogram", name, labels, window)
        raw = self._read(self._eval, self.ops.histogram_read(series))
        return None if raw is UNKNOWN else parse_histogram(raw)

    def track_rate(
        self, name: str, window_seconds: int = 60, labels: Labels = None, count: int = 1
    ) -> None:
        """Count `count` events for the rate over a sliding window of `window_seconds`."""
        self._write(self.ops.track_rate(name, window_seconds, labels, count))

    def get_rate(self, name: str, window_seconds: int = 60, labels: Labels = None) -> float | None:
        """Events per second over the last `window_seconds` (None if unknown under fail open)."""
        window = validate_window(window_seconds)
        series, _ = self.ops.series("rate", name, labels, window)
        raw = self._read(self._eval, self.ops.rate_read(series))
        return None if raw is UNKNOWN else parse_rate(raw, window)

    # -- batches, buffer, observability ----------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """Collect writes and send them as one pipeline (one round trip) when the block ends.

        Nothing is sent if the block raises. `Batch.results` holds each write's result.
        """
        batch = Batch(self.ops)
        yield batch
        batch.results, error = self._write_many(batch.ops)
        if error is not None:
            raise error

    def flush_buffer(self) -> int:
        """Replay buffered writes now; returns how many were replayed (0 if Redis is down)."""
        before = self.buffer.replayed
        self._down_until = 0.0
        with self._replay_lock:
            self._replay()
        return self.buffer.replayed - before

    def export_prometheus(self) -> str:
        """Every registered series' current value in the Prometheus text format 0.0.4."""
        from realtime.prometheus import collect_and_render

        return collect_and_render(self)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RealtimeMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for the maintenance modules (registry, persistence, reconcile) --------------
    def execute_many(self, ops: Sequence[Op], chunk: int = SCAN_COUNT) -> list[Any]:
        """Run script calls in pipelines of `chunk`; returns raw replies, raises on errors."""
        replies: list[Any] = []
        for start in range(0, len(ops), chunk):
            replies.extend(self._pipeline(ops[start : start + chunk]))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def execute_commands(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run plain commands (e.g. ``("GET", key)``) in pipelines; raises on errors."""
        replies: list[Any] = []
        for start in range(0, len(commands), SCAN_COUNT):
            pipe = self.client.pipeline(transaction=False)
            for command in commands[start : start + SCAN_COUNT]:
                pipe.execute_command(*command)
            replies.extend(pipe.execute())
        return replies

    def series_of(self, kind: Kind) -> list[tuple[Series, float]]:
        """Registered series of one kind with their last registration time (ZSCAN, no KEYS)."""
        key = registry_key(self.settings.prefix, kind)
        return [
            (Series.from_member(kind, reply_text(member)), float(score))
            for member, score in self.client.zscan_iter(key, count=SCAN_COUNT)
        ]

    def register(self, items: Sequence[tuple[Series, int]]) -> None:
        """Record series in the registry (ZADD with the registration time); errors are logged,
        not raised: a series re-registers itself within one refresh interval anyway."""
        if not items:
            return
        pipe = self.client.pipeline(transaction=False)
        for kind, mapping in by_kind(items).items():
            key = registry_key(self.settings.prefix, kind)
            pipe.zadd(key, mapping)
            if self.settings.registry_ttl:
                pipe.expire(key, self.settings.registry_ttl)
        try:
            pipe.execute()
        except UNAVAILABLE_ERRORS as error:
            logger.warning("could not update the realtime series registry: %s", error)

    # -- internals -------------------------------------------------------------------------
    def _eval(self, op: Op) -> Any:
        """EVALSHA the op's script; on NOSCRIPT (Redis restarted, a new cluster node) load it
        and retry: what redis-py's Script.__call__ does, minus its per-call overhead."""
        try:
            return self.client.execute_command(
                "EVALSHA", self._shas[op.script], b"1", op.key, *op.args
            )
        except NoScriptError:
            self._load_script(op.script)
            return self.client.execute_command(
                "EVALSHA", self._shas[op.script], b"1", op.key, *op.args
            )

    def _load_script(self, name: str) -> None:
        script = self._scripts[name]
        script.sha = self.client.script_load(script.script)
        self._shas[name] = script.sha.encode("ascii")

    def _write(self, op: Op) -> Number | None:
        if self._degraded and not self._recover():
            self.buffer.add(op)
            return None
        try:
            raw = self._eval(op)
        except UNAVAILABLE_ERRORS as error:
            if not self.fail_open:
                raise
            self.write_errors += 1
            self._went_down(error)
            self.buffer.add(op)
            return None
        value, registered_at = write_reply(op, raw)
        if registered_at:
            self.register([(op.series, registered_at)])
        return value

    def _write_many(self, ops: Sequence[Op]) -> tuple[list[Number | None], Exception | None]:
        """Send writes in one pipeline: their results, and the first write error (e.g.
        WRONGTYPE) if any; writes that cannot reach Redis are buffered (fail open)."""
        if not ops:
            return [], None
        if self._degraded and not self._recover():
            for op in ops:
                self.buffer.add(op)
            return [None] * len(ops), None
        try:
            replies = self._pipeline(ops)
        except UNAVAILABLE_ERRORS as error:
            if not self.fail_open:
                raise
            self.write_errors += 1
            self._went_down(error)
            for op in ops:
                self.buffer.add(op)
            return [None] * len(ops), None
        outcome = read_writes(ops, replies)
        if outcome.unreached_error is not None:  # a cluster node was down: those writes only
            if not self.fail_open:
                raise outcome.unreached_error
            self.write_errors += 1
            self._went_down(outcome.unreached_error)
            for op in outcome.unreached:
                self.buffer.add(op)
        self.register(outcome.registrations)
        return outcome.values, outcome.error

    def _read(self, function: Any, *args: Any) -> Any:
        if self._degraded and not self._recover() and self.fail_open:
            self.read_errors += 1
            return UNKNOWN
        try:
            return function(*args)
        except UNAVAILABLE_ERRORS as error:
            if not self.fail_open:
                raise
            self.read_errors += 1
            self._went_down(error)
            return UNKNOWN

    def _pipeline(self, ops: Sequence[Op]) -> list[Any]:
        """Run ops in one pipeline (one round trip), writes grouped into batch.lua calls; on
        NOSCRIPT (Redis restarted, a new cluster node) load the script and resend just those
        calls. Returns one reply per op; errors are returned, not raised."""
        calls = plan_calls(ops, self._slot_of)
        replies = self._send(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for name in {calls[i].script for i in missing}:
                self._load_script(name)
            resent = self._send([calls[i] for i in missing])
            for i, reply in zip(missing, resent, strict=True):
                replies[i] = reply
        return spread_replies(calls, replies, len(ops))

    def _send(self, calls: Sequence[Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            sha = self._shas[call.script]
            pipe.execute_command("EVALSHA", sha, len(call.keys), *call.keys, *call.args)
        return list(pipe.execute(raise_on_error=False))

    def _recover(self) -> bool:
        """True when Redis may be used again (buffer replayed, or another thread replaying)."""
        if time.monotonic() < self._down_until:
            return False
        if not self._replay_lock.acquire(blocking=False):
            return True
        try:
            return self._replay()
        finally:
            self._replay_lock.release()

    def _replay(self) -> bool:
        """Send buffered writes in order, in pipelined chunks. Caller holds the replay lock."""
        while True:
            ops = self.buffer.take(REPLAY_CHUNK)
            if not ops:
                if self._degraded:
                    logger.info("Redis reachable again; realtime write buffer replayed")
                self._degraded = bool(len(self.buffer))
                return True
            try:
                replies = self._pipeline(ops)
            except UNAVAILABLE_ERRORS as error:
                self.buffer.put_back(ops)
                self.write_errors += 1
                self._went_down(error)
                return False
            outcome = read_writes(ops, replies)
            failures = sum(isinstance(reply, Exception) for reply in replies)
            self.buffer.replayed += len(ops) - failures
            self.register(outcome.registrations)
            if outcome.error is not None:
                rejected = failures - len(outcome.unreached)
                self.buffer.failed += rejected
                logger.error("%d buffered realtime writes rejected: %s", rejected, outcome.error)
            if outcome.unreached_error is not None:
                self.buffer.put_back(outcome.unreached)
                self.write_errors += 1
                self._went_down(outcome.unreached_error)
                return False
