"""`RealtimeCore`: the realtime client's whole policy, written once for both client kinds.

Failure policy (docs/reference.md). With ``fail_open=True`` (the default) a write that cannot reach
Redis does not raise: it goes to a bounded in-process buffer (`realtime.buffer`) and is replayed,
in order, before the next write that finds Redis reachable again, or by `flush_buffer()`.
After a failure, Redis is not tried again for `retry_interval` seconds (`realtime.availability`,
the policy the dashboard cache follows too), so an outage costs the application one timeout,
not one per call. Reads under fail open return None ("unknown", never a misleading 0) and count
a read error. With ``fail_open=False`` every Redis error raises.

Replayed window writes (histograms, rates, unique counts, top-k) land in the time slot of the
replay: Redis' clock is the only clock. A connection lost in the middle of a replay may apply a
write twice (at-least-once); counters are corrected by `realtime.reconcile`.

Every method is a coroutine that reaches Redis only through `_call` and `_pipeline_raw`; how
the blocking and the asyncio client run them is in `realtime.driving`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, Self

from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from realtime.aggregation import MERGED, Aggregator
from realtime.async_cluster import ClusterGate, needs_gate
from realtime.availability import REDIS_ERRORS, Availability, unavailable
from realtime.batch import Batch
from realtime.buffer import WriteBuffer
from realtime.cardinality import (
    DEFAULT_MAX_LABEL_SETS,
    OVERFLOW_MEMORY,
    overflow_series,
    validate_limit,
)
from realtime.driving import api
from realtime.flushing import Flusher, ensure_flusher
from realtime.labels import OVERFLOW_LABELS, validate_window
from realtime.names import NameCollisionError, collision, names_key, owner_of, sample_names
from realtime.operations import (
    UNKNOWN,
    Call,
    Labels,
    Number,
    Op,
    Operations,
    Settings,
    by_kind,
    cluster_slot_function,
    parse_histogram,
    parse_rate,
    parse_top,
    plan_calls,
    read_writes,
    reply_text,
    spread_replies,
    to_number,
    write_reply,
)
from realtime.prometheus import EXPORTED_TOP, Collected, plain_commands, render_collected
from realtime.scripts import SCRIPT_NAMES
from realtime.series import KINDS, Kind, Series, registry_key, validate_prefix
from realtime.sketch import HistogramSnapshot

logger = logging.getLogger("realtime")

REPLAY_CHUNK = 500
SCAN_COUNT = 1000


class RealtimeCore:
    """Live metrics on a redis-py client (plain or asyncio, standalone or cluster).

    Use `realtime.RealtimeMetrics` or `realtime.AsyncRealtimeMetrics`; their `from_url` builds
    the client with a bounded connection pool and timeouts.
    """

    # The redis-py module a client kind connects with (``redis`` or ``redis.asyncio``).
    redis_module: ClassVar[Any]
    # Whether the client's replies are awaitables (redis.asyncio).
    awaits_replies: ClassVar[bool] = False

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
        max_label_sets: int | None = DEFAULT_MAX_LABEL_SETS,
        flush_interval: float | None = None,
    ) -> None:
        self._client = client
        self.settings = Settings(validate_prefix(prefix), idle_ttl, counter_hours, registry_refresh)
        self.ops = Operations(self.settings)
        self.fail_open = fail_open
        self.availability = Availability(
            retry_interval, logger, "realtime writes are buffered (fail open)"
        )
        self.buffer = WriteBuffer(buffer_size)
        self.read_errors = 0
        self.write_errors = 0
        self._claimed: set[bytes] = set()  # series whose exported names this process holds
        # Series beyond their metric's label-set limit -> the overflow series and its key.
        self._overflowed: dict[bytes, tuple[Series, bytes]] = {}
        self.max_label_sets = validate_limit(max_label_sets)
        self.overflowed = 0  # writes sent to an overflow series
        self._owners: set[str] = set()  # metrics (kind:name) whose names this process holds
        self._asyncio = self.awaits_replies
        self._execute = client.execute_command
        # An asyncio Redis Cluster client is initialized before use and its commands in flight
        # bounded (realtime.async_cluster); every other client is called as it is.
        self._gate = ClusterGate(client) if needs_gate(client) else None
        if self._gate is not None:
            self._execute = self._gate.execute_command
        self._sources = {name: self.settings.script_source(name) for name in SCRIPT_NAMES}
        # The hot path sends each script's SHA as bytes, which redis-py passes on as they are.
        self._shas = {name: _sha1(source).encode("ascii") for name, source in self._sources.items()}
        self._degraded = False  # buffer non-empty or Redis recently unreachable
        self._replay_lock = threading.Lock()
        self._slot_of = cluster_slot_function(client)
        # Client-side aggregation (realtime.aggregation, realtime.flushing); off by default.
        if flush_interval is not None and not (
            isinstance(flush_interval, int | float) and 0 < flush_interval <= 3600
        ):
            raise ValueError(
                f"flush_interval must be None or in (0, 3600] s, not {flush_interval!r}"
            )
        self.flush_interval = float(flush_interval or 0)
        self.aggregator = Aggregator()
        self.flusher: Flusher | None = None

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
        max_label_sets: int | None = DEFAULT_MAX_LABEL_SETS,
        flush_interval: float | None = None,
        **redis_options: Any,
    ) -> Self:
        """Connect to `url` with a bounded pool (`max_connections`, waiting at most
        `pool_timeout` for a free connection) and socket timeouts; one quick retry, no backoff
        (the write buffer, not sleeping, absorbs outages). ``cluster=True`` uses RedisCluster
        (blocking: a pool of `max_connections` per node, each waiting at most `pool_timeout`;
        asyncio: at most `max_connections` commands in flight, each waiting at most
        `pool_timeout` for its turn; realtime.async_cluster). A call that finds no connection
        in time is a ConnectionError ("No connection available."), buffered under fail open.
        ``max_label_sets``: label sets per metric before writes go to its overflow series
        (realtime.cardinality; None: no limit). ``flush_interval``: seconds over which
        counters, rates and histograms are merged in process and sent as one batch
        (realtime.aggregation; None: every write goes at once).
        """
        module = cls.redis_module
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "retry": module.retry.Retry(NoBackoff(), 1),
            **redis_options,
        }
        client: Any
        if cluster:
            if not cls.awaits_replies:  # the nodes' default pool raises at once when full
                options = {
                    "connection_pool_class": module.BlockingConnectionPool,
                    "timeout": pool_timeout,
                    **options,
                }
            client = module.cluster.RedisCluster.from_url(
                url, max_connections=max_connections, **options
            )
        else:
            pool = module.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_timeout, **options
            )
            client = module.Redis(connection_pool=pool)
        metrics = cls(
            client,
            prefix=prefix,
            fail_open=fail_open,
            buffer_size=buffer_size,
            retry_interval=retry_interval,
            idle_ttl=idle_ttl,
            counter_hours=counter_hours,
            registry_refresh=registry_refresh,
            max_label_sets=max_label_sets,
            flush_interval=flush_interval,
        )
        if metrics._gate is not None:
            metrics._gate.wait = pool_timeout
            metrics._gate.renew = lambda: module.cluster.RedisCluster.from_url(
                url, max_connections=max_connections, **options
            )
        return metrics

    @property
    def client(self) -> Any:
        """The redis-py client (on an asyncio Redis Cluster, the one its gate holds now)."""
        return self._gate.client if self._gate is not None else self._client

    @property
    def retry_interval(self) -> float:
        """Seconds Redis is left alone after it was found unavailable."""
        return self.availability.retry_interval

    def stats(self) -> dict[str, int]:
        """Counters of the failure machinery: buffered, replayed, dropped, failed, pending,
        write_errors and read_errors (Redis unreachable); overflowed, the writes this process
        sent to an overflow series (realtime.cardinality); aggregated, the writes merged in
        process under a flush interval (realtime.aggregation)."""
        return {
            "buffered": self.buffer.buffered,
            "replayed": self.buffer.replayed,
            "dropped": self.buffer.dropped,
            "failed": self.buffer.failed,
            "pending": len(self.buffer),
            "write_errors": self.write_errors,
            "read_errors": self.read_errors,
            "overflowed": self.overflowed,
            "aggregated": self.aggregator.merged,
        }

    def batch(self) -> Batch:
        """Collect writes and send them as one pipeline (one round trip) when the block ends
        (``with`` on the blocking client, ``async with`` on the asyncio one).

        Nothing is sent if the block raises. `Batch.results` holds each write's result.
        """
        return Batch(self.ops, self._write_many)

    # -- the contract's methods ------------------------------------------------------------
    @api
    async def increment_counter(
        self, name: str, value: Number = 1, labels: Labels = None
    ) -> Number | None:
        """Add `value` to a counter; returns the new total (None when the write was buffered)."""
        return await self._write(self.ops.increment_counter(name, value, labels))

    @api
    async def get_counter(self, name: str, labels: Labels = None) -> Number | None:
        """Current total (0 if never written; None if Redis is unreachable under fail open)."""
        _, key = self.ops.series("counter", name, labels)
        raw = await self._read(("GET", key))
        if raw is UNKNOWN:
            return None
        return 0 if raw is None else to_number(raw)

    @api
    async def set_gauge(
        self, name: str, value: Number, labels: Labels = None, unit: str | None = None
    ) -> None:
        """Set a gauge to `value`; `unit` (e.g. "ms") is kept until another unit is given."""
        await self._write(self.ops.set_gauge(name, value, labels, unit))

    @api
    async def get_gauge(self, name: str, labels: Labels = None) -> Number | None:
        """The gauge's value, or None if never set (or Redis is unreachable under fail open)."""
        _, key = self.ops.series("gauge", name, labels)
        raw = await self._read(("HGET", key, "v"))
        return None if raw is None or raw is UNKNOWN else to_number(raw)

    @api
    async def add_to_histogram(
        self, name: str, value: Number, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        """Record one observation in the histogram's sliding window."""
        await self._write(self.ops.add_to_histogram(name, value, window_seconds, labels))

    @api
    async def get_histogram(
        self, name: str, window_seconds: int = 300, labels: Labels = None
    ) -> HistogramSnapshot | None:
        """Count, sum, min, max, mean and percentiles over the last `window_seconds` (plus up to
        one slot, a thirtieth of the window); None if Redis is unreachable under fail open."""
        window = validate_window(window_seconds)
        series, _ = self.ops.series("histogram", name, labels, window)
        raw = await self._read(self.ops.histogram_read(series))
        return None if raw is UNKNOWN else parse_histogram(raw)

    @api
    async def track_rate(
        self, name: str, window_seconds: int = 60, labels: Labels = None, count: int = 1
    ) -> None:
        """Count `count` events for the rate over a sliding window of `window_seconds`."""
        await self._write(self.ops.track_rate(name, window_seconds, labels, count))

    @api
    async def get_rate(
        self, name: str, window_seconds: int = 60, labels: Labels = None
    ) -> float | None:
        """Events per second over the last `window_seconds` (None if unknown under fail open)."""
        window = validate_window(window_seconds)
        series, _ = self.ops.series("rate", name, labels, window)
        raw = await self._read(self.ops.rate_read(series))
        return None if raw is UNKNOWN else parse_rate(raw, window)

    @api
    async def track_unique(
        self, name: str, member: str | int, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        """Count `member` among the distinct members seen over a sliding window."""
        await self._write(self.ops.track_unique(name, member, window_seconds, labels))

    @api
    async def get_unique(
        self, name: str, window_seconds: int = 300, labels: Labels = None
    ) -> int | None:
        """Estimated distinct members over the last `window_seconds` (plus up to one slot), from
        per-slot HyperLogLogs: standard error 0.81%; None if unknown under fail open."""
        window = validate_window(window_seconds)
        series, _ = self.ops.series("unique", name, labels, window)
        raw = await self._read(self.ops.unique_read(series))
        return None if raw is UNKNOWN else int(raw)

    @api
    async def track_top(
        self, name: str, item: str, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        """Count one occurrence of `item` for the top-k over a sliding window."""
        await self._write(self.ops.track_top(name, item, window_seconds, labels))

    @api
    async def get_top(
        self, name: str, k: int, window_seconds: int = 300, labels: Labels = None
    ) -> list[tuple[str, int]] | None:
        """The `k` (at most 100) most counted items over the last `window_seconds` (plus up to
        one slot) as (item, count), heaviest first; exact for items counted far more often
        than the rest (realtime.series.TOP_CAPACITY). None if unknown under fail open."""
        window = validate_window(window_seconds)
        series, _ = self.ops.top_series(name, labels, window)
        raw = await self._read(self.ops.top_read(series, k))
        return None if raw is UNKNOWN else parse_top(raw)

    # -- buffer and observability ----------------------------------------------------------
    @api
    async def flush_buffer(self) -> int:
        """Replay buffered writes now; returns how many were replayed (0 if Redis is down or
        another caller is replaying them)."""
        before = self.buffer.replayed
        self.availability.retry_now()
        if self._replay_lock.acquire(blocking=False):
            try:
                await self._replay()
            finally:
                self._replay_lock.release()
        return self.buffer.replayed - before

    @api
    async def flush(self) -> int:
        """Send the writes merged under a flush interval now (and replay the buffer); returns
        how many merged writes were sent or buffered. A replay under way in another thread or
        task is waited for: once this returns, every earlier write is in Redis or buffered."""
        self.availability.retry_now()
        sent = await self._flush()
        if self._degraded:
            await self._recover(wait=True)
        return sent

    async def _flush(self) -> int:
        """One flush: the merged writes in one pipeline. Writes that cannot reach Redis go to
        the buffer, whatever `fail_open` says (it is how aggregation rides out outages)."""
        taken = self.aggregator.take()
        try:
            ops = await self._claim_replayed(taken)
            if ops:
                _, error = await self._deliver(ops, fail_open=True)
                if error is not None:
                    logger.error("aggregated realtime writes rejected: %s", error)
            elif self._degraded:
                await self._recover()
        except asyncio.CancelledError:
            # Cut short (the event loop is ending): the last flush sends them again, like
            # buffered writes whose connection dropped (at least once, never lost).
            self.aggregator.put_back(taken)
            raise
        return len(ops)

    @api
    async def export_prometheus(self) -> str:
        """Every registered series' current value in the Prometheus text format 0.0.4."""
        counters, gauges, histograms, rates, uniques, tops = [
            [series for series, _ in await self._series_of(kind)] for kind in KINDS
        ]
        plain = await self._execute_commands(plain_commands(counters, gauges, self.ops.key))
        windowed = await self._execute_many(
            [self.ops.histogram_read(s) for s in histograms]
            + [self.ops.rate_read(s) for s in rates]
            + [self.ops.unique_read(s) for s in uniques]
            + [self.ops.top_read(s, EXPORTED_TOP) for s in tops]
        )
        return render_collected(
            Collected(counters, gauges, histograms, rates, uniques, tops, plain, windowed)
        )

    # -- helpers for the maintenance modules (registry, persistence, reconcile) --------------
    async def _execute_many(self, ops: Sequence[Op], chunk: int = SCAN_COUNT) -> list[Any]:
        """Run script calls in pipelines of `chunk`; returns raw replies, raises on errors."""
        replies: list[Any] = []
        for start in range(0, len(ops), chunk):
            replies.extend(await self._pipeline(ops[start : start + chunk]))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _execute_commands(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Run plain commands (e.g. ``("GET", key)``) in pipelines; raises on errors."""
        replies: list[Any] = []
        for start in range(0, len(commands), SCAN_COUNT):
            part = await self._pipeline_raw(commands[start : start + SCAN_COUNT])
            for reply in part:
                if isinstance(reply, Exception):
                    raise reply
            replies.extend(part)
        return replies

    async def _series_of(self, kind: Kind) -> list[tuple[Series, float]]:
        """Registered series of one kind with their last registration time (ZSCAN, no KEYS)."""
        key = registry_key(self.settings.prefix, kind)
        found: list[tuple[Series, float]] = []
        cursor: Any = 0
        while True:
            cursor, items = await self._call("zscan", key, cursor, None, SCAN_COUNT)
            found.extend(
                (Series.from_member(kind, reply_text(member)), float(score))
                for member, score in items
            )
            if int(cursor) == 0:
                return found

    async def _register(self, items: Sequence[tuple[Series, int]]) -> None:
        """Record series in the registry (ZADD with the registration time); errors are logged,
        not raised: a series re-registers itself within one refresh interval anyway."""
        if not items:
            return
        commands: list[tuple[Any, ...]] = []
        for kind, mapping in by_kind(items).items():
            key = registry_key(self.settings.prefix, kind)
            pairs = [part for member, at in mapping.items() for part in (at, member)]
            commands.append(("ZADD", key, *pairs))
            if self.settings.registry_ttl:
                commands.append(("EXPIRE", key, self.settings.registry_ttl))
        try:
            await self._pipeline_raw(commands)
        except REDIS_ERRORS as error:
            if not unavailable(error):
                raise
            logger.warning("could not update the realtime series registry: %s", error)

    execute_many = api(_execute_many)
    execute_commands = api(_execute_commands)
    series_of = api(_series_of)
    register = api(_register)

    # -- the one place that talks to Redis ---------------------------------------------------
    async def _call(self, method: str, *args: Any) -> Any:
        """Call one redis-py client method; await the reply if the client is asyncio."""
        if self._gate is not None:
            return await self._gate.run(getattr(self.client, method), *args)
        reply = getattr(self.client, method)(*args)
        return (await reply) if self._asyncio else reply

    async def _pipeline_raw(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send commands in one pipeline; errors are returned in place, not raised (a cluster
        that cannot be reached at all raises)."""
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        if self._gate is not None:
            return list(await self._gate.run(pipe.execute, raise_on_error=False))
        replies = pipe.execute(raise_on_error=False)
        return list((await replies) if self._asyncio else replies)

    # -- internals -------------------------------------------------------------------------
    async def _eval(self, op: Op) -> Any:
        """EVALSHA the op's script; on NOSCRIPT (Redis restarted, a new cluster node) load it
        and retry: what redis-py's Script.__call__ does, minus its per-call overhead."""
        try:
            reply = self._execute("EVALSHA", self._shas[op.script], b"1", op.key, *op.args)
            return (await reply) if self._asyncio else reply
        except NoScriptError:
            return await self._eval_again(op)

    async def _eval_again(self, op: Op) -> Any:
        """After NOSCRIPT (Redis restarted, a new cluster node): load the op's script and send
        the op again."""
        await self._load_script(op.script)
        return await self._call(
            "execute_command", "EVALSHA", self._shas[op.script], b"1", op.key, *op.args
        )

    async def _load_script(self, name: str) -> None:
        sha = await self._call("script_load", self._sources[name])
        self._shas[name] = reply_text(sha).encode("ascii")

    async def _claim(self, write: Op) -> Op:
        """The write as it goes to Redis: refused when its metric's Prometheus names are another
        metric's (realtime.names), sent to the overflow series when its label set is beyond the
        metric's limit (realtime.cardinality). Asks Redis once per series per process; a write
        that cannot ask (Redis down) goes as it is, and is asked about again when replayed."""
        routed = self._overflowed.get(write.key)
        if routed is not None:
            self.overflowed += 1
            return write._replace(key=routed[1], series=routed[0])
        series = write.series
        owner = owner_of(series)
        if not self.max_label_sets and owner in self._owners:
            self._claimed.add(write.key)  # another series of this metric claimed the names
            return write
        if self.availability.paused():
            return write
        key = names_key(self.settings.prefix).encode("utf-8")
        ttl = self.settings.registry_ttl or 0
        limit = 0 if series.labels == OVERFLOW_LABELS else self.max_label_sets
        names = sample_names(series.kind, series.name)
        op = Op("claim_series", key, (owner, ttl, limit, series.labels, *names), series)
        try:
            reply = await self._eval(op)
        except REDIS_ERRORS as error:
            self._outage(error, self.fail_open)  # the write is buffered; its replay claims
            return write
        if not isinstance(reply, int):
            raise collision(series, reply_text(reply))
        self._owners.add(owner)
        if not reply:
            self._claimed.add(write.key)
            return write
        overflow = overflow_series(series)
        overflow_key = self.ops.key(overflow).encode("utf-8")
        if len(self._overflowed) >= OVERFLOW_MEMORY:
            self._overflowed.clear()
        self._overflowed[write.key] = (overflow, overflow_key)
        self._claimed.add(overflow_key)
        self.overflowed += 1
        return write._replace(key=overflow_key, series=overflow)

    async def _claim_all(self, ops: Sequence[Op]) -> list[Op]:
        """`_claim` for each write not claimed yet, in order."""
        return [op if op.key in self._claimed else await self._claim(op) for op in ops]

    def _outage(self, error: Exception, fail_open: bool, *, read: bool = False) -> None:
        """Raise `error` unless it says Redis is unavailable and the call fails open; else count
        it (as a read or a write error) and mark the client down. The caller then buffers its
        writes, or answers UNKNOWN."""
        if not (fail_open and unavailable(error)):
            raise error
        if read:
            self.read_errors += 1
        else:
            self.write_errors += 1
        self._went_down(error)

    def _went_down(self, error: Exception) -> None:
        self.availability.failed(error)
        self._degraded = True

    async def _write(self, op: Op) -> Number | None:
        if op.key not in self._claimed:
            op = await self._claim(op)
        if self.flush_interval and op.script in MERGED:
            self.aggregator.add(op)
            if self.flusher is None:
                ensure_flusher(self, self._asyncio)
            return None
        if self._degraded and not await self._recover():
            self.buffer.add(op)
            return None
        try:
            # _eval written out: one coroutine less on every write.
            try:
                raw = self._execute("EVALSHA", self._shas[op.script], b"1", op.key, *op.args)
                if self._asyncio:
                    raw = await raw
            except NoScriptError:
                raw = await self._eval_again(op)
        except REDIS_ERRORS as error:
            self._outage(error, self.fail_open)
            self.buffer.add(op)
            return None
        value, registered_at = write_reply(op, raw)
        if registered_at:
            await self._register([(op.series, registered_at)])
        return value

    async def _write_many(self, ops: Sequence[Op]) -> tuple[list[Number | None], Exception | None]:
        """Send writes in one pipeline: their results, and the first write error (e.g.
        WRONGTYPE) if any; writes that cannot reach Redis are buffered (fail open)."""
        if not ops:
            return [], None
        return await self._deliver(await self._claim_all(ops), self.fail_open)

    async def _deliver(
        self, ops: Sequence[Op], fail_open: bool
    ) -> tuple[list[Number | None], Exception | None]:
        """`_write_many` for claimed writes."""
        if self._degraded and not await self._recover():
            for op in ops:
                self.buffer.add(op)
            return [None] * len(ops), None
        try:
            replies = await self._pipeline(ops)
        except REDIS_ERRORS as error:
            self._outage(error, fail_open)
            for op in ops:
                self.buffer.add(op)
            return [None] * len(ops), None
        outcome = read_writes(ops, replies)
        if outcome.unreached_error is not None:  # a cluster node was down: those writes only
            self._outage(outcome.unreached_error, fail_open)
            for op in outcome.unreached:
                self.buffer.add(op)
        await self._register(outcome.registrations)
        return outcome.values, outcome.error

    async def _read(self, request: Op | tuple[Any, ...]) -> Any:
        """One read (a read script's op, or a plain command), or UNKNOWN when Redis is
        unavailable under fail open."""
        if self._degraded and not await self._recover() and self.fail_open:
            self.read_errors += 1
            return UNKNOWN
        try:
            if isinstance(request, Op):
                return await self._eval(request)
            return await self._call("execute_command", *request)
        except REDIS_ERRORS as error:
            self._outage(error, self.fail_open, read=True)
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
        replies = await self._pipeline_raw(
            [
                ("EVALSHA", self._shas[call.script], len(call.keys), *call.keys, *call.args)
                for call in calls
            ]
        )
        return replies

    async def _claim_replayed(self, ops: Sequence[Op]) -> list[Op]:
        """Buffered writes claimed (and routed) as they go to Redis; those whose names another
        metric took meanwhile are dropped and counted as failed."""
        kept: list[Op] = []
        for op in ops:
            try:
                kept.append(op if op.key in self._claimed else await self._claim(op))
            except NameCollisionError as error:
                self.buffer.failed += 1
                logger.error("buffered realtime write rejected: %s", error)
        return kept

    async def _recover(self, wait: bool = False) -> bool:
        """True when Redis may be used again (buffer replayed, or another caller replaying).
        With `wait`, a replay another thread or task holds is waited for and the buffer replayed
        after it (that replay had taken writes out of the buffer that are not in Redis yet)."""
        if self.availability.paused():
            return False
        if not wait:
            if not self._replay_lock.acquire(blocking=False):
                return True
        elif self._asyncio:
            while not self._replay_lock.acquire(blocking=False):
                await asyncio.sleep(0.001)
        else:
            self._replay_lock.acquire()
        try:
            return await self._replay()
        finally:
            self._replay_lock.release()

    async def _replay(self) -> bool:
        """Send buffered writes in order, in pipelined chunks. Caller holds the replay lock."""
        while True:
            ops = self.buffer.take(REPLAY_CHUNK)
            if not ops:
                if self._degraded:
                    self.availability.recovered()
                    logger.info("realtime write buffer replayed")
                self._degraded = bool(len(self.buffer))
                return True
            ops = await self._claim_replayed(ops)
            if self.availability.paused():  # down again while claiming
                self.buffer.put_back(ops)
                return False
            try:
                replies = await self._pipeline(ops)
            except REDIS_ERRORS as error:
                self._outage(error, True)  # only writes buffered under fail open are replayed
                self.buffer.put_back(ops)
                return False
            outcome = read_writes(ops, replies)
            failures = sum(isinstance(reply, Exception) for reply in replies)
            self.buffer.replayed += len(ops) - failures
            await self._register(outcome.registrations)
            if outcome.error is not None:
                rejected = failures - len(outcome.unreached)
                self.buffer.failed += rejected
                logger.error("%d buffered realtime writes rejected: %s", rejected, outcome.error)
            if outcome.unreached_error is not None:
                self.buffer.put_back(outcome.unreached)
                self._outage(outcome.unreached_error, True)
                return False


def _sha1(source: str) -> str:
    from hashlib import sha1

    return sha1(source.encode("utf-8")).hexdigest()
