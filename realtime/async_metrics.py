"""`AsyncRealtimeMetrics`: the asyncio twin of `RealtimeMetrics` (redis.asyncio).

Same methods as coroutines, same Lua scripts, key layout, validation, batch and fail-open
buffer; see `realtime.metrics` for the failure policy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from realtime.availability import UNAVAILABLE_ERRORS
from realtime.batch import Batch
from realtime.client_state import ClientState
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

logger = logging.getLogger("realtime.metrics")

REPLAY_CHUNK = 500
PIPELINE_CHUNK = 1000


class AsyncRealtimeMetrics(ClientState):
    """Live metrics on a `redis.asyncio.Redis` or `redis.asyncio.cluster.RedisCluster`."""

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
        self._replaying = False

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
    ) -> AsyncRealtimeMetrics:
        """As `RealtimeMetrics.from_url`, with redis.asyncio clients."""
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "retry": Retry(NoBackoff(), 1),
            **redis_options,
        }
        client: Any
        if cluster:
            from redis.asyncio.cluster import RedisCluster

            client = RedisCluster.from_url(url, max_connections=max_connections, **options)
        else:
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_timeout, **options
            )
            client = redis.asyncio.Redis(connection_pool=pool)
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
    async def increment_counter(
        self, name: str, value: Number = 1, labels: Labels = None
    ) -> Number | None:
        """Add `value` to a counter; returns the new total (None when the write was buffered)."""
        return await self._write(self.ops.increment_counter(name, value, labels))

    async def get_counter(self, name: str, labels: Labels = None) -> Number | None:
        """Current total (0 if never written; None if Redis is unreachable under fail open)."""
        _, key = self.ops.series("counter", name, labels)
        raw = await self._read(self.client.get, key)
        if raw is UNKNOWN:
            return None
        return 0 if raw is None else to_number(raw)

    async def set_gauge(
        self, name: str, value: Number, labels: Labels = None, unit: str | None = None
    ) -> None:
        """Set a gauge to `value`; `unit` is kept until another unit is given."""
        await self._write(self.ops.set_gauge(name, value, labels, unit))

    async def get_gauge(self, name: str, labels: Labels = None) -> Number | None:
        """The gauge's value, or None if never set (or Redis is unreachable under fail open)."""
        _, key = self.ops.series("gauge", name, labels)
        raw = await self._read(self.client.hget, key, "v")
        return None if raw is None or raw is UNKNOWN else to_number(raw)

    async def add_to_histogram(
        self, name: str, value: Number, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        """Record one observation in the histogram's sliding window."""
        await self._write(self.ops.add_to_histogram(name, value, window_seconds, labels))

    async def get_histogram(
        self, name: str, window_seconds: int = 300, labels: Labels = None
    ) -> HistogramSnapshot | None:
        """Snapshot over the last `window_seconds` (None if unknown under fail open)."""
        window = validate_window(window_seconds)
        series, _ = self.ops.series("histogram", name, labels, window)
        raw = await self._read(self._eval, self.ops.histogram_read(series))
        return None if raw is UNKNOWN else parse_histogram(raw)

    async def track_rate(
        self, name: str, window_seconds: int = 60, labels: Labels = None, count: int = 1
    ) -> None:
        """Count `count` events for the rate over a sliding window of `window_seconds`."""
        await self._write(self.ops.track_rate(name, window_seconds, labels, count))

    async def get_rate(
        self, name: str, window_seconds: int = 60, labels: Labels = None
    ) -> float | None:
        """Events per second over the last `window_seconds` (None if unknown under fail open)."""
        window = validate_window(window_seconds)
        series, _ = self.ops.series("rate", name, labels, window)
        raw = await self._read(self._eval, self.ops.rate_read(series))
        return None if raw is UNKNOWN else parse_rate(raw, window)

    # -- batches, buffer, observability ----------------------------------------------------
    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        """``async with rt.batch() as b:`` sends the collected writes as one pipeline."""
        batch = Batch(self.ops)
        yield batch
        batch.results, error = await self._write_many(batch.ops)
        if error is not None:
            raise error

    async def flush_buffer(self) -> int:
        """Replay buffered writes now; returns how many were replayed (0 if Redis is down)."""
        before = self.buffer.replayed
        self._down_until = 0.0
        await self._recover()
        return self.buffer.replayed - before

    async def export_prometheus(self) -> str:
        """Every registered series' current value in the Prometheus text format 0.0.4."""
        from realtime.prometheus import collect_and_render_async

        return await collect_and_render_async(self)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> AsyncRealtimeMetrics:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- helpers for maintenance code ------------------------------------------------------
    async def execute_many(self, ops: Sequence[Op]) -> list[Any]:
        """Run script calls in pipelines; returns raw replies, raises on errors."""
        replies: list[Any] = []
        for start in range(0, len(ops), PIPELINE_CHUNK):
            replies.extend(await self._pipeline(ops[start : start + PIPELINE_CHUNK]))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def execute_commands(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run plain commands in pipelines; raises on errors."""
        replies: list[Any] = []
        for start in range(0, len(commands), PIPELINE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for command in commands[start : start + PIPELINE_CHUNK]:
                pipe.execute_command(*command)
            replies.extend(await pipe.execute())
        return replies

    async def series_of(self, kind: Kind) -> list[tuple[Series, float]]:
        """Registered series of one kind with their last registration time."""
        key = registry_key(self.settings.prefix, kind)
        return [
            (Series.from_member(kind, reply_text(member)), float(score))
            async for member, score in self.client.zscan_iter(key, count=PIPELINE_CHUNK)
        ]

    async def register(self, items: Sequence[tuple[Series, int]]) -> None:
        """Record series in the registry; errors are logged, not raised."""
        if not items:
            return
        pipe = self.client.pipeline(transaction=False)
        for kind, mapping in by_kind(items).items():
            key = registry_key(self.settings.prefix, kind)
            pipe.zadd(key, mapping)
            if self.settings.registry_ttl:
                pipe.expire(key, self.settings.registry_ttl)
        try:
            await pipe.execute()
        except UNAVAILABLE_ERRORS as error:
            logger.warning("could not update the realtime series registry: %s", error)

    # -- internals -------------------------------------------------------------------------
    async def _eval(self, op: Op) -> Any:
        """EVALSHA the op's script; on NOSCRIPT (Redis restarted, a new cluster node) load it
        and retry: what redis-py's Script.__call__ does, minus its per-call overhead."""
        try:
            return await self.client.execute_command(
                "EVALSHA", self._shas[op.script], b"1", op.key, *op.args
            )
        except NoScriptError:
            await self._load_script(op.script)
            return await self.client.execute_command(
                "EVALSHA", self._shas[op.script], b"1", op.key, *op.args
            )

    async def _load_script(self, name: str) -> None:
        script = self._scripts[name]
        script.sha = await self.client.script_load(script.script)
        self._shas[name] = script.sha.encode("ascii")

    async def _write(self, op: Op) -> Number | None:
        if self._degraded and not await self._recover():
            self.buffer.add(op)
            return None
        try:
            raw = await self._eval(op)
        except UNAVAILABLE_ERRORS as error:
            if not self.fail_open:
                raise
            self.write_errors += 1
            self._went_down(error)
            self.buffer.add(op)
            return None
        value, registered_at = write_reply(op, raw)
        if registered_at:
            await self.register([(op.series, registered_at)])
        return value

    async def _write_many(self, ops: Sequence[Op]) -> tuple[list[Number | None], Exception | None]:
        """Send writes in one pipeline: their results, and the first write error (e.g.
        WRONGTYPE) if any; writes that cannot reach Redis are buffered (fail open)."""
        if not ops:
            return [], None
        if self._degraded and not await self._recover():
            for op in ops:
                self.buffer.add(op)
            return [None] * len(ops), None
        try:
            replies = await self._pipeline(ops)
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
        await self.register(outcome.registrations)
        return outcome.values, outcome.error

    async def _read(self, function: Any, *args: Any) -> Any:
        if self._degraded and not await self._recover() and self.fail_open:
            self.read_errors += 1
            return UNKNOWN
        try:
            return await function(*args)
        except UNAVAILABLE_ERRORS as error:
            if not self.fail_open:
                raise
            self.read_errors += 1
            self._went_down(error)
            return UNKNOWN

    async def _pipeline(self, ops: Sequence[Op]) -> list[Any]:
        """Run ops in one pipeline (one round trip), writes grouped into batch.lua calls; on
        NOSCRIPT (Redis restarted, a new cluster node) load the script and resend just those
        calls. Returns one reply per op; errors are returned, not raised."""
        calls = plan_calls(ops, self._slot_of)
        replies = await self._send(calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for name in {calls[i].script for i in missing}:
                await self._load_script(name)
            resent = await self._send([calls[i] for i in missing])
            for i, reply in zip(missing, resent, strict=True):
                replies[i] = reply
        return spread_replies(calls, replies, len(ops))

    async def _send(self, calls: Sequence[Call]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            sha = self._shas[call.script]
            pipe.execute_command("EVALSHA", sha, len(call.keys), *call.keys, *call.args)
        return list(await pipe.execute(raise_on_error=False))

    async def _recover(self) -> bool:
        """True when Redis may be used again (buffer replayed, or a replay in progress)."""
        if time.monotonic() < self._down_until:
            return False
        if self._replaying:
            return True
        self._replaying = True
        try:
            return await self._replay()
        finally:
            self._replaying = False

    async def _replay(self) -> bool:
        while True:
            ops = self.buffer.take(REPLAY_CHUNK)
            if not ops:
                if self._degraded:
                    logger.info("Redis reachable again; realtime write buffer replayed")
                self._degraded = bool(len(self.buffer))
                return True
            try:
                replies = await self._pipeline(ops)
            except UNAVAILABLE_ERRORS as error:
                self.buffer.put_back(ops)
                self.write_errors += 1
                self._went_down(error)
                return False
            outcome = read_writes(ops, replies)
            failures = sum(isinstance(reply, Exception) for reply in replies)
            self.buffer.replayed += len(ops) - failures
            await self.register(outcome.registrations)
            if outcome.error is not None:
                rejected = failures - len(outcome.unreached)
                self.buffer.failed += rejected
                logger.error("%d buffered realtime writes rejected: %s", rejected, outcome.error)
            if outcome.unreached_error is not None:
                self.buffer.put_back(outcome.unreached)
                self.write_errors += 1
                self._went_down(outcome.unreached_error)
                return False
