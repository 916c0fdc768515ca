"""`MetricsCache`: get-or-compute over Redis with TTL tiers, tag versions and stampede protection.

Design (docs/architecture.md):

* Keys live under the namespace's root ``<namespace>::`` (`serving.layout`), so namespaces never
  touch each other's keys.
* Tags belong to an entry and are set when it is written. The entry (`serving.entry`) remembers
  the namespace generation and the versions of its own tags when its computation started, and
  is valid only while they are all current; the tags it carries are in its header, so a read
  with the same, other or no tags hits a valid entry. Invalidating a tag is one version bump:
  O(1), no tag sets to leak, and still correct when a version key is evicted or expires (a
  missing version is re-created from Redis ``TIME``, never reused).
* Every invalidation also moves the namespace's stamp. A hit is one MGET of the entry and the
  stamp: an entry this process has proven valid under the same stamp (its versions read
  together with that stamp when it was written here, or checked after that stamp was read) is
  valid, since no version moved without moving the stamp. Otherwise a second MGET reads the
  versions its header names and compares them (versions only move forward, so versions read
  just after the entry and the stamp prove the entry valid when they were read), and the
  process remembers the proof. So a hit costs the same whatever the number of tags, and after
  an invalidation each process proves each entry it reads once more, in two round trips.
* Version keys carry a long TTL (``tag_ttl``, 7 days by default, and never shorter than the
  entries that use them); every write extends it. Nothing the cache writes lives forever.
* An entry's Redis TTL is its logical TTL plus a short stale grace. After the logical TTL one
  caller takes a lock (``SET NX PX``) and recomputes while concurrent callers get the stale value;
  with no usable value they poll briefly (bounded) for the lock holder's result, and compute
  locally if it does not come. Values invalidated by a tag or `clear_all` are never served stale.
* Redis failures never escape `get_or_compute` (docs/reference.md): the value is computed, the
  error counted, and Redis is left alone for ``retry_after`` seconds (`realtime.availability`,
  the policy the realtime client follows too). An entry that cannot be decoded is a counted
  miss, never an exception. A Redis Cluster client's usage error is no failure of Redis: it is
  raised.

* Redis Cluster (``from_url(url, cluster=True)``): every key of a namespace carries the hash tag
  ``{<namespace>::}`` (`serving.layout`), so an entry, its lock, the generation and its tags'
  versions and the stamp share one slot, so the hit's MGETs and every script run there
  unchanged.
  A namespace therefore lives on one primary: several namespaces spread over the nodes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import secrets
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final, NamedTuple, TypeVar, cast

import redis
import redis.asyncio
import redis.cluster
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisClusterException
from redis.retry import Retry

from realtime.availability import REDIS_ERRORS, Availability, unavailable
from serving import entry
from serving.autopipeline import AutoPipeline
from serving.keys import key_prefix
from serving.layout import Layout
from serving.memo import DecodedMemo
from serving.scripts import script_source
from serving.serialization import dumps, loads
from serving.stats import CacheStats
from serving.ttl import TTL_TIERS, resolve_ttl
from serving.warming import CacheEntry

__all__ = ["TTL_TIERS", "CacheEntry", "MetricsCache", "resolve_ttl"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_KEY_RE: Final = re.compile(r"[^\s{}\x00-\x1f\x7f]{1,1024}")
_TAG_RE: Final = re.compile(r"[^\s{}\x00-\x1f\x7f]{1,256}")
_MAX_PLANS: Final = 10_000


def _bounded_put(memo: dict[K, V], key: K, value: V) -> None:
    """Store `value` in a per-process memo, emptied first when it holds `_MAX_PLANS` other keys
    (a rare full reset keeps the hot path to one dict write)."""
    if len(memo) >= _MAX_PLANS and key not in memo:
        memo.clear()
    memo[key] = value


@lru_cache(maxsize=4096)
def _normalize_tags(tags: tuple[str, ...]) -> tuple[tuple[str, ...], bytes]:
    """Sorted unique tags, validated, and the bytes an entry stores for them."""
    for tag in tags:
        if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
            raise ValueError(
                f"invalid cache tag {tag!r}: 1-256 characters, no whitespace or braces"
            )
    ordered = tuple(sorted(set(tags)))
    return ordered, " ".join(ordered).encode("utf-8")


class _Plan(NamedTuple):
    """What one (key, ttl, tags) request needs, computed once."""

    key: str
    entry_key: str
    lock_key: str
    version_keys: tuple[str, ...]  # the generation, then the tags' versions
    tags_blob: bytes
    prefix: str
    ttl_ms: int
    lookup: tuple[str | bytes, ...]  # the hit's MGET of the entry and the stamp (encoded)


class _Hit(NamedTuple):
    """A valid entry as the hit's MGET found it (the expiry parsed only when read)."""

    expires: bytes
    body: bytes


class _Unproven(NamedTuple):
    """An entry not proven valid under the current stamp, and the MGET of its versions."""

    raw: bytes
    head: entry.Header
    stamp: bytes | None
    versions_mget: tuple[str | bytes, ...]


_INVALID: Final = 0
_UNKNOWN: Final = object()  # not looked up yet (None is a remembered answer)


class _Found(NamedTuple):
    """What a lookup found: a fresh value, or a stale body to serve while recomputing."""

    fresh: bool
    value: Any
    stale: bytes | None


_NOTHING: Final = _Found(False, None, None)


def _misused(error: Exception) -> bool:
    """True for a RedisClusterException that is no outage (`realtime.availability.unavailable`):
    a usage error of the cluster client (e.g. ``cluster=True`` on a Redis that is not a
    cluster), which must surface. Every RedisError is a failure of Redis, computed around."""
    return isinstance(error, RedisClusterException) and not unavailable(error)


class MetricsCache:
    """Get-or-compute cache for dashboard reads, with tags, tiers and stampede protection."""

    def __init__(
        self,
        client: redis.Redis | redis.cluster.RedisCluster,
        *,
        namespace: str = "metrics",
        stale_grace: float = 60.0,
        lock_ttl: float = 10.0,
        lock_wait: float = 2.0,
        tag_ttl: int = 7 * 86400,
        retry_after: float = 1.0,
        decoded_memo_bytes: int = 8 * 1024 * 1024,
        async_client: Callable[[], redis.asyncio.Redis | AsyncRedisCluster] | None = None,
    ) -> None:
        """Wrap a redis-py client (bytes responses; `redis.Redis` or `RedisCluster`). Prefer
        `from_url`, which sets timeouts.

        ``stale_grace``: seconds (capped at the TTL) an expired value is kept to serve while one
        caller recomputes; 0 disables. ``lock_ttl``: how long a crashed computer can block
        others. ``lock_wait``: how long waiters poll before computing themselves.
        ``tag_ttl``: TTL of tag version keys. ``retry_after``: pause after a connection failure.
        ``decoded_memo_bytes``: how much JSON this process keeps decoded so that a repeated hit
        of an unchanged entry skips decoding (serving.memo); 0 disables.
        ``async_client``: makes an asyncio client to the same Redis, for `fresh_json` (one
        client per event loop); `from_url` provides it.
        """
        if stale_grace < 0 or lock_ttl <= 0 or lock_wait < 0 or tag_ttl <= 0 or retry_after < 0:
            raise ValueError("stale_grace, lock_wait, retry_after >= 0; lock_ttl, tag_ttl > 0")
        self.layout = Layout(namespace)
        self.namespace = self.layout.namespace
        self.stale_grace = float(stale_grace)
        self.lock_ttl = float(lock_ttl)
        self.lock_wait = float(lock_wait)
        self.tag_ttl = int(tag_ttl)
        self._client = client
        self._memo = DecodedMemo(decoded_memo_bytes)
        self._stats = CacheStats()
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        # Per entry key: (versions, tags, stamp) of the entry last proven valid under stamp.
        self._proofs: dict[str, tuple[bytes, bytes, bytes]] = {}
        self._versions_mgets: dict[bytes, tuple[str | bytes, ...] | None] = {}
        self.availability = Availability(retry_after, logger, "the metrics cache computes uncached")
        # redis-py types register_script for redis.Redis only; RedisCluster has the same one.
        register = cast(redis.Redis, client).register_script
        scripts = {name: register(script_source(name)) for name in _SCRIPTS}
        self._versions, self._bump, self._write, self._release = (
            scripts[name] for name in _SCRIPTS
        )
        self._execute: Callable[..., Any] = client.execute_command
        self._make_async_client = async_client
        self._async_pipelines: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AutoPipeline
        ] = weakref.WeakKeyDictionary()

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        namespace: str = "metrics",
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        max_connections: int = 64,
        cluster: bool = False,
        **options: Any,
    ) -> MetricsCache:
        """A cache on a pooled connection to ``url`` (default ``REDIS_URL``), with short timeouts.

        ``cluster=True``: ``url`` names any node of a Redis Cluster (`RedisCluster`, which finds
        the others). Extra keyword arguments (``stale_grace``, ``lock_wait`` ...) go to the
        constructor. ``max_connections``: per node on a cluster, where a call finding them all
        in use waits up to ``socket_timeout`` for one; on one Redis a call beyond them is
        redis-py's MaxConnectionsError at once, counted as an outage (computed uncached).
        """
        url = url or os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
        connection: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "max_connections": max_connections,
            "health_check_interval": 30,
        }
        # One immediate retry survives a connection dropped by a Redis restart; more would
        # only multiply the wait when Redis is really down.
        retry = Retry(NoBackoff(), 1)
        client: redis.Redis | redis.cluster.RedisCluster
        async_client: Callable[[], redis.asyncio.Redis | AsyncRedisCluster]
        if cluster:
            # A blocking pool per node: redis-py's default one raises as soon as it is full.
            client = redis.cluster.RedisCluster.from_url(
                url,
                connection_pool_class=redis.BlockingConnectionPool,
                timeout=socket_timeout,
                retry=retry,
                **connection,
            )

            def async_client() -> redis.asyncio.Redis | AsyncRedisCluster:
                return AsyncRedisCluster.from_url(url, **connection)

        else:
            # redis-py's own pool, on the benchmarked hit path (docs/beyond_one_machine.md)
            pool = redis.ConnectionPool.from_url(url, retry=retry, **connection)
            client = redis.Redis(connection_pool=pool)

            def async_client() -> redis.asyncio.Redis | AsyncRedisCluster:
                return redis.asyncio.Redis(
                    connection_pool=redis.asyncio.ConnectionPool.from_url(url, **connection)
                )

        options.setdefault("async_client", async_client)
        return cls(client, namespace=namespace, **options)

    @property
    def client(self) -> redis.Redis | redis.cluster.RedisCluster:
        """The underlying redis-py client."""
        return self._client

    @property
    def retry_after(self) -> float:
        """Seconds Redis is left alone after a connection failure."""
        return self.availability.retry_interval

    def close(self) -> None:
        """Release the connection pool (asyncio clients: `aclose`)."""
        self._client.close()

    async def aclose(self) -> None:
        """Release the asyncio client of the running event loop, if `fresh_json` made one."""
        pipeline = self._async_pipelines.pop(asyncio.get_running_loop(), None)
        if pipeline is not None:
            await pipeline.aclose()

    def __enter__(self) -> MetricsCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entry_key(self, key: str) -> str:
        """The Redis key holding ``key``'s entry (for inspection and tests)."""
        return self.layout.entry(key)

    # ------------------------------------------------------------------ get-or-compute

    def _plan(self, key: str, ttl: int | float | str, tags: Iterable[str]) -> _Plan:
        """Validate a request and precompute its Redis keys (memoized: hits skip this work)."""
        if isinstance(tags, str):
            raise TypeError("tags must be an iterable of tag strings, not one string")
        tag_tuple = tuple(tags)
        try:
            memo_key = (key, ttl, type(ttl), tag_tuple)
            plan = self._plans.get(memo_key)
        except TypeError:  # unhashable ttl or tags: let validation explain
            memo_key, plan = None, None
        if plan is not None:
            return plan
        ttl_ms = int(resolve_ttl(ttl) * 1000)
        ordered, tags_blob = _normalize_tags(tag_tuple)
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(
                f"invalid cache key {key!r}: 1-1024 characters, no whitespace or braces "
                "(use serving.keys to build keys from user input)"
            )
        layout = self.layout
        versions = (layout.generation, *(layout.tag(tag) for tag in ordered))
        entry_key = layout.entry(key)
        plan = _Plan(
            key,
            entry_key,
            layout.lock(key),
            versions,
            tags_blob,
            key_prefix(key),
            ttl_ms,
            ("MGET", entry_key.encode("utf-8"), layout.stamp.encode("utf-8")),
        )
        if memo_key is not None:
            _bounded_put(self._plans, memo_key, plan)
        return plan

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], T],
        ttl: int | float | str = "default",
        tags: Iterable[str] = (),
    ) -> T:
        """The cached value of ``key``, or ``compute()``'s result, cached for ``ttl`` with ``tags``.

        Tags belong to the entry written on a miss: a later read with the same, other or no
        tags hits while the entry's own tags are valid. Never raises because of Redis or of an
        undecodable entry: the value is computed and the event counted. Exceptions from
        ``compute`` propagate and nothing is cached.
        """
        return cast(T, self._get(key, compute, ttl, tags, decode=True))

    def get_or_compute_json(
        self,
        key: str,
        compute: Callable[[], Any],
        ttl: int | float | str = "default",
        tags: Iterable[str] = (),
    ) -> bytes:
        """As `get_or_compute`, but returns the cached JSON bytes without decoding them.

        For a value made of plain JSON types (a dashboard bundle) these are standard JSON, ready
        to send as an HTTP response body; dates and Decimals appear as the cache's marker objects.
        A hit then costs little more than a bare GET.
        """
        return cast(bytes, self._get(key, compute, ttl, tags, decode=False))

    def _get(
        self,
        key: str,
        compute: Callable[[], Any],
        ttl: int | float | str,
        tags: Iterable[str],
        *,
        decode: bool,
    ) -> Any:
        """One lookup: the value (``decode``) or its JSON bytes; computes and stores on a miss."""
        plan = self._plan(key, ttl, tags)
        if self.availability.paused():
            self._stats.add(plan.prefix, misses=1, errors=1, redis_skipped=1)
            return self._uncached(compute, decode)
        try:
            raw = self._lookup(plan)
        except REDIS_ERRORS as error:
            self._redis_failed(plan.prefix, error, misses=1)
            return self._uncached(compute, decode)
        if self.availability.down:
            self.availability.recovered()
        found = self._found(plan, raw, decode)
        if found.fresh:
            self._stats.hit(plan.prefix)
            return found.value
        return self._fill(plan, compute, found.stale, decode, raw)

    async def fresh_json(
        self, key: str, ttl: int | float | str = "default", tags: Iterable[str] = ()
    ) -> bytes | None:
        """A fresh entry's JSON bytes, read without leaving the event loop; None otherwise.

        For asyncio servers: a hit costs one await (two when it is proven again after an
        invalidation), no worker thread, and the hits of one turn of the event loop share one
        pipeline (`serving.autopipeline`). On None (a miss, a stale or undecodable entry, Redis
        unavailable, no asyncio client) call `get_or_compute_json` in a worker thread: it
        computes, stores, and counts what happened. Counts hits only.
        """
        plan = self._plan(key, ttl, tags)
        if self._make_async_client is None or self.availability.paused():
            return None
        loop = asyncio.get_running_loop()
        pipeline = self._async_pipelines.get(loop)
        if pipeline is None:
            make = self._make_async_client
            pipeline = self._async_pipelines[loop] = AutoPipeline(make(), renew=make)
        try:
            found = self._judge(plan.entry_key, await pipeline.execute(*plan.lookup))
            if isinstance(found, _Unproven):
                versions = await pipeline.execute(*found.versions_mget)
                found = self._prove(plan.entry_key, found, versions)
        except REDIS_ERRORS as error:  # an outage: the blocking path records it
            if _misused(error):
                raise
            return None
        if not isinstance(found, _Hit):
            return None
        try:
            if int(found.expires) <= time.time() * 1000:
                return None
        except ValueError:
            return None
        self._stats.hit(plan.prefix)
        return found.body

    def _lookup(self, plan: _Plan) -> _Hit | int | None:
        """The entry if it is valid, `_INVALID` if it is there but not valid, None if absent.

        One MGET of the entry and the stamp; a second MGET of the versions its header names
        when this process has not proven it valid under that stamp.
        """
        found = self._judge(plan.entry_key, self._execute(*plan.lookup))
        if isinstance(found, _Unproven):
            return self._prove(plan.entry_key, found, self._execute(*found.versions_mget))
        return found

    def _judge(
        self, entry_key: str, values: Sequence[bytes | None]
    ) -> _Hit | int | _Unproven | None:
        """Read the lookup's MGET reply (the entry, the stamp): proven, or what proves it."""
        raw, stamp = values
        if raw is None:
            return None
        head = entry.header(raw)
        if head is None:
            return _INVALID
        if stamp is not None and self._proofs.get(entry_key) == (head.versions, head.tags, stamp):
            return _Hit(head.expires, raw[head.body_start :])
        versions_mget = self._versions_mget(head.tags)
        if versions_mget is None:
            return _INVALID
        return _Unproven(raw, head, stamp, versions_mget)

    def _versions_mget(self, tags_blob: bytes) -> tuple[str | bytes, ...] | None:
        """The MGET of the generation and the versions of an entry's tags (as its header holds
        them); None if they are not tags (a brace would leave the namespace's slot)."""
        known = self._versions_mgets.get(tags_blob, _UNKNOWN)
        if known is not _UNKNOWN:
            return cast("tuple[str | bytes, ...] | None", known)
        try:
            tags = tags_blob.decode("utf-8").split(" ") if tags_blob else []
        except UnicodeDecodeError:
            tags = ["{"]
        mget: tuple[str | bytes, ...] | None = None
        if all(_TAG_RE.fullmatch(tag) for tag in tags):
            keys = (self.layout.generation, *(self.layout.tag(tag) for tag in tags))
            mget = ("MGET", *(key.encode("utf-8") for key in keys))
        _bounded_put(self._versions_mgets, tags_blob, mget)
        return mget

    def _prove(
        self, entry_key: str, unproven: _Unproven, versions: Sequence[bytes | None]
    ) -> _Hit | int:
        """The entry if its stored versions are the current ``versions`` (remembered as proven
        under the stamp read with it), else `_INVALID`."""
        head = unproven.head
        if not entry.current(head.versions, versions):
            return _INVALID
        if unproven.stamp is not None:
            self._remember(entry_key, head.versions, head.tags, unproven.stamp)
        return _Hit(head.expires, unproven.raw[head.body_start :])

    def _remember(self, entry_key: str, versions: bytes, tags: bytes, stamp: bytes) -> None:
        """Remember that an entry with these versions and tags is valid while the stamp is."""
        _bounded_put(self._proofs, entry_key, (versions, tags, stamp))

    def _found(self, plan: _Plan, raw: _Hit | int | None, decode: bool) -> _Found:
        """Read what `_lookup` found: a fresh value, a stale body, or nothing usable."""
        if not isinstance(raw, _Hit):  # no entry, or an invalid one
            return _NOTHING
        try:
            expires_ms = int(raw.expires)
        except ValueError:
            self._undecodable(plan, "has a malformed header")
            return _NOTHING
        body = raw.body
        if expires_ms <= time.time() * 1000:
            return _Found(False, None, body)
        if not decode:
            return _Found(True, body, None)
        try:
            return _Found(True, self._memo.loads(plan.key, body), None)
        except Exception as error:  # a hit never raises: corrupt, planted or unknown-zone data
            self._undecodable(plan, f"cannot be decoded ({error!r})")
            return _NOTHING

    def _undecodable(self, plan: _Plan, why: str) -> None:
        self._stats.add(plan.prefix, errors=1, undecodable=1)
        logger.warning("cache entry %r %s; recomputing", plan.key, why)

    @staticmethod
    def _uncached(compute: Callable[[], Any], decode: bool) -> Any:
        """Compute without the cache (Redis unavailable)."""
        value = compute()
        return value if decode else dumps(value)

    def _fill(
        self,
        plan: _Plan,
        compute: Callable[[], Any],
        stale: bytes | None,
        decode: bool,
        seen: _Hit | int | None,
    ) -> Any:
        """The miss path: take the lock and compute, or serve stale, or wait for the holder.

        ``seen`` is what the lookup that made this a miss found."""
        prefix = plan.prefix
        token = secrets.token_hex(8)
        try:
            acquired = self._take_lock(plan, token)
        except REDIS_ERRORS as error:
            self._redis_failed(prefix, error, misses=1)
            return self._uncached(compute, decode)
        if not acquired:
            if stale is not None:
                try:
                    stale_value = loads(stale) if decode else stale
                except Exception as error:  # served stale only if it decodes
                    self._undecodable(plan, f"cannot be decoded ({error!r})")
                else:
                    self._stats.add(prefix, hits=1, stale_hits=1)
                    return stale_value
            self._stats.add(prefix, lock_waits=1)
            outcome = self._wait(plan, token, decode)
            if outcome is None:  # Redis failed while waiting (already counted)
                self._stats.add(prefix, misses=1)
                return self._uncached(compute, decode)
            found, acquired, seen = outcome
            if found.fresh:
                self._stats.add(prefix, hits=1)
                return found.value
            if not acquired:
                self._stats.add(prefix, lock_timeouts=1)
        if acquired:
            filled = self._filled_meanwhile(plan, token, decode, seen)
            if filled is not None:
                self._stats.add(prefix, hits=1)
                return filled.value
        return self._compute_and_store(plan, token if acquired else "", compute, decode)

    def _filled_meanwhile(
        self, plan: _Plan, token: str, decode: bool, seen: _Hit | int | None
    ) -> _Found | None:
        """With the lock just taken, the entry if a previous holder stored it since our lookup.

        The write script stores the entry before it frees the lock, so looking again closes
        the gap between a miss and taking the lock in which the herd would compute twice.
        Releases the lock when a new fresh entry is there; None (keep the lock, compute)
        otherwise. An unchanged entry is not read twice (nor counted twice if undecodable).
        """
        try:
            raw = self._lookup(plan)
        except REDIS_ERRORS as error:
            self._redis_failed(plan.prefix, error)
            return None
        if raw == seen:
            return None
        found = self._found(plan, raw, decode)
        if not found.fresh:
            return None
        self._release_lock(plan.lock_key, token)
        return found

    def _take_lock(self, plan: _Plan, token: str) -> bool:
        return bool(self._client.set(plan.lock_key, token, nx=True, px=int(self.lock_ttl * 1000)))

    def _wait(
        self, plan: _Plan, token: str, decode: bool
    ) -> tuple[_Found, bool, _Hit | int | None] | None:
        """Poll (bounded) for another caller's result: (what was found, lock acquired, what the
        last lookup found).

        Returns None when Redis failed. If the lock frees up without a value (the holder failed
        or died), this caller takes it over.
        """
        deadline = time.monotonic() + self.lock_wait
        delay = 0.002
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _NOTHING, False, None
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 0.05)
            try:
                raw = self._lookup(plan)
                found = self._found(plan, raw, decode)
                if found.fresh:
                    return found, False, raw
                if self._take_lock(plan, token):
                    return _NOTHING, True, raw
            except REDIS_ERRORS as error:
                self._redis_failed(plan.prefix, error)
                return None

    def _compute_and_store(
        self, plan: _Plan, token: str, compute: Callable[[], Any], decode: bool
    ) -> Any:
        """Read the versions, compute, store: an invalidation during the compute wins."""
        read = self._current_versions((*plan.version_keys, self.layout.stamp), plan.prefix)
        self._stats.add(plan.prefix, misses=1)
        try:
            value = compute()
            payload = dumps(value)
        except BaseException:
            if token:
                self._release_lock(plan.lock_key, token)
            raise
        if read is not None:
            self._store(plan, token, payload, read[:-1], read[-1])
        elif token:
            self._release_lock(plan.lock_key, token)
        return value if decode else payload

    def _current_versions(self, keys: Sequence[str], prefix: str | None) -> list[bytes] | None:
        """Current versions of ``keys``, creating missing ones; None if Redis failed."""
        try:
            created = self._versions(keys=list(keys), args=[self._version_ttl(0)])
        except REDIS_ERRORS as error:
            self._redis_failed(prefix, error)
            return None
        return [bytes(v) for v in created]

    def _version_ttl(self, entry_px: int) -> int:
        return max(self.tag_ttl, math.ceil(entry_px / 1000) + 1)

    def _write_args(
        self, plan: _Plan, token: str, payload: bytes, versions: Sequence[bytes]
    ) -> tuple[list[str], list[bytes | int | str]]:
        """Keys and arguments of the write script for one entry.

        The Redis TTL is the logical TTL plus the stale grace (capped at the TTL itself); the
        logical expiry goes in the header, by this process's clock (it only decides when to
        refresh, so clock skew between app servers shifts refreshes, never correctness).
        """
        expires = int(time.time() * 1000) + plan.ttl_ms
        data = entry.encode(expires, versions, plan.tags_blob, payload)
        px = plan.ttl_ms + int(min(self.stale_grace * 1000, plan.ttl_ms))
        keys = [plan.entry_key, plan.lock_key, *plan.version_keys, self.layout.stamp]
        return keys, [data, px, token, self._version_ttl(px)]

    def _store(
        self, plan: _Plan, token: str, payload: bytes, versions: Sequence[bytes], stamp: bytes
    ) -> None:
        """Write an entry whose ``versions`` were read together with ``stamp``: it is proven
        valid under that stamp."""
        keys, args = self._write_args(plan, token, payload, versions)
        try:
            self._write(keys=keys, args=args)
        except REDIS_ERRORS as error:
            self._redis_failed(plan.prefix, error)
        else:
            self._stats.add(plan.prefix, writes=1)
            self._remember(plan.entry_key, b",".join(versions), plan.tags_blob, stamp)

    def _release_lock(self, lkey: str, token: str) -> None:
        try:
            self._release(keys=[lkey], args=[token])
        except REDIS_ERRORS as error:  # it expires on its own
            self._redis_failed(None, error)

    def _redis_failed(self, prefix: str | None, error: Exception, **extra: int) -> None:
        """Count a Redis failure; an unavailable Redis is left alone for ``retry_after``. A
        cluster client's usage error is a bug, not a failure of Redis: raised."""
        if _misused(error):
            raise error
        self._stats.add(prefix, errors=1, **extra)
        if not self.availability.failed(error):
            logger.warning("metrics cache Redis error: %s", error)

    # ------------------------------------------------------------------ invalidation

    def invalidate_by_tag(self, tag: str) -> int:
        """Invalidate every entry carrying ``tag`` (one version bump); returns the new version.

        Raises Redis errors (after counting them) so a caller such as a sensor can retry: a lost
        invalidation would otherwise leave stale figures behind.
        """
        return self.invalidate_tags([tag])[0]

    def invalidate_tags(self, tags: Iterable[str]) -> list[int]:
        """Bump several tags in one round trip; returns their new versions in the given order."""
        if isinstance(tags, str):
            raise TypeError("tags must be an iterable of tag strings, not one string")
        tag_list = list(tags)
        _normalize_tags(tuple(tag_list))
        if not tag_list:
            return []
        keys = [self.layout.tag(tag) for tag in tag_list]
        try:
            new = self._bump(keys=[self.layout.stamp, *keys], args=[self._version_ttl(0)])
        except REDIS_ERRORS as error:
            self._redis_failed(None, error)
            raise
        self._stats.add(None, invalidations=len(tag_list))
        return [int(v) for v in new]

    def clear_all(self, *, scan_budget: float = 2.0) -> int:
        """Invalidate every entry of this namespace now (bump its generation), then reclaim memory.

        The reclaiming is a bounded SCAN + UNLINK of this namespace's entries and locks (never
        KEYS, never another namespace's keys); whatever the budget leaves behind is already
        invalid and expires by its TTL. Returns how many keys were removed. Raises Redis errors,
        like `invalidate_by_tag`.
        """
        try:
            self._bump(
                keys=[self.layout.stamp, self.layout.generation], args=[self._version_ttl(0)]
            )
        except REDIS_ERRORS as error:
            self._redis_failed(None, error)
            raise
        self._stats.add(None, invalidations=1)
        self._memo.clear()
        self._proofs.clear()
        removed = 0
        deadline = time.monotonic() + scan_budget
        try:
            for pattern in self.layout.scan_patterns():
                batch: list[bytes] = []
                for found in self._scan(pattern):
                    batch.append(found)
                    if len(batch) >= 1000:
                        removed += cast(int, self._client.unlink(*batch))
                        batch.clear()
                        if time.monotonic() > deadline:
                            break
                if batch:
                    removed += cast(int, self._client.unlink(*batch))
                if time.monotonic() > deadline:
                    break
        except REDIS_ERRORS as error:  # the generation bump already made everything invalid
            self._redis_failed(None, error)
        return removed

    def _scan(self, pattern: str) -> Iterator[bytes]:
        """SCAN for ``pattern``; on a cluster only the primary holding the namespace's slot."""
        client = self._client
        if isinstance(client, redis.cluster.RedisCluster):
            node = client.get_node_from_key(self.layout.generation)  # type: ignore[no-untyped-call]
            return cast(
                "Iterator[bytes]", client.scan_iter(match=pattern, count=1000, target_nodes=node)
            )
        return cast("Iterator[bytes]", client.scan_iter(match=pattern, count=1000))

    # ------------------------------------------------------------------ warming and stats

    def warm_cache(self, entries: Iterable[CacheEntry | Mapping[str, Any]]) -> int:
        """Compute and store entries ahead of time; returns how many were written.

        Each entry is a `CacheEntry` or a mapping with ``key``, ``compute`` and optional ``ttl``
        and ``tags``. Versions are read before computing, so an invalidation during warming
        still wins. If Redis is down nothing is computed and 0 is returned (the error is
        counted). If a compute raises, what was computed before it is still written, then the
        error propagates.
        """
        plans: list[tuple[CacheEntry, _Plan]] = []
        for given in entries:
            item = CacheEntry.of(given)
            plans.append((item, self._plan(item.key, item.ttl, item.tags)))
        if not plans:
            return 0
        all_keys = list(dict.fromkeys(k for _, plan in plans for k in plan.version_keys))
        all_keys.append(self.layout.stamp)
        if self.availability.paused():
            self._stats.add(None, errors=1, redis_skipped=1)
            return 0
        created = self._current_versions(all_keys, None)
        if created is None:
            return 0
        current = dict(zip(all_keys, created, strict=True))
        ready: list[tuple[_Plan, list[str], list[bytes | int | str]]] = []
        proofs: list[tuple[_Plan, bytes]] = []
        try:
            for item, plan in plans:
                payload = dumps(item.compute())
                versions = [current[k] for k in plan.version_keys]
                keys, args = self._write_args(plan, "", payload, versions)
                ready.append((plan, keys, args))
                proofs.append((plan, b",".join(versions)))
        finally:
            written = self._write_many(ready)
        if written:  # read with the stamp, like the versions: proven under it
            for plan, versions_blob in proofs:
                self._remember(plan.entry_key, versions_blob, plan.tags_blob, created[-1])
        return written

    def _write_many(self, ready: Sequence[tuple[_Plan, list[str], list[bytes | int | str]]]) -> int:
        """Run the write script for many entries in one pipelined round trip."""
        if not ready:
            return 0
        try:
            try:
                self._pipelined_writes(ready)
            except NoScriptError:  # a cluster pipeline does not load scripts on its own
                self._client.script_load(self._write.script)
                self._pipelined_writes(ready)
        except REDIS_ERRORS as error:
            self._redis_failed(None, error)
            return 0
        for plan, _, _ in ready:
            self._stats.add(plan.prefix, writes=1)
        return len(ready)

    def _pipelined_writes(
        self, ready: Sequence[tuple[_Plan, list[str], list[bytes | int | str]]]
    ) -> None:
        """EVALSHA the write script per entry in one pipeline (a cluster pipeline refuses
        redis-py's Script objects, and sends all of one namespace's calls to its slot's node)."""
        pipe = self._client.pipeline(transaction=False)
        sha = self._write.sha
        for _, keys, args in ready:
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        pipe.execute()

    def get_stats(self) -> dict[str, Any]:
        """Counters of this process: hits, misses, errors (Redis failures, skipped calls and
        undecodable entries), stale_hits, undecodable, lock_waits, lock_timeouts, writes,
        invalidations, hit_ratio, and ``prefixes``: hits/misses/errors/stale_hits per key prefix
        (the key up to its second ``:``)."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._stats.reset()


_SCRIPTS: Final = ("versions", "bump", "write", "release")
