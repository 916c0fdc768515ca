"""`MetricsCache`: get-or-compute over Redis with TTL tiers, tag versions and stampede protection.

Design (docs/architecture.md):

* Redis layout, all under ``<namespace>:``: entries ``e:<key>``, stampede locks ``l:<key>``,
  tag versions ``t:<tag>`` and the namespace generation ``g`` (which `clear_all` bumps).
* An entry is ``c1 <expires_ms> <versions> <tags>\\n<json>``: it remembers the generation and
  the versions of its tags when its computation started. A read fetches the entry and the
  current versions in one ``MGET`` (one round trip) and serves it only if they all match, so
  invalidating a tag is one ``INCR``: O(1), no tag sets to leak, and still correct when a version
  key is evicted or expires (a missing version is re-created from Redis ``TIME``, never reused,
  so an old entry can never match it again).
* Version keys carry a long TTL (``tag_ttl``, 7 days by default, and never shorter than the
  entries that use them); every write extends it. Nothing the cache writes lives forever.
* An entry's Redis TTL is its logical TTL plus a short stale grace. After the logical TTL one
  caller takes a lock (``SET NX PX``) and recomputes while concurrent callers get the stale value;
  with no usable value they poll briefly (bounded) for the lock holder's result, and compute
  locally if it does not come. Values invalidated by a tag or `clear_all` are never served stale.
* Redis failures never escape `get_or_compute` (docs/reference.md): the value is computed, the error
  counted, and Redis is left alone for ``retry_after`` seconds so an outage costs nothing per call.
* A hit costs one MGET plus JSON decoding; `get_or_compute_json` skips the decoding for values
  that go straight into an HTTP response. With redis-py's pure-Python reply parser every extra
  key in the MGET costs a few microseconds; installing ``hiredis`` makes that negligible.

Tags and the entry are separate keys, so on Redis Cluster they would need to share a slot; this
cache targets a standalone (or Sentinel-managed) Redis, as the project runs.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final, NamedTuple, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from realtime.kernel_timeout import pool_options
from serving.keys import key_prefix
from serving.memo import DecodedMemo
from serving.serialization import dumps, loads

__all__ = ["TTL_TIERS", "MetricsCache", "resolve_ttl"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

TTL_TIERS: Final[Mapping[str, int]] = {"short": 300, "default": 3600, "long": 86400}
"""Named TTLs in seconds, as docs/reference.md names them."""

_FORMAT: Final = b"c1"
_KEY_RE: Final = re.compile(r"[^\s{}\x00-\x1f\x7f]{1,1024}")
_TAG_RE: Final = re.compile(r"[^\s{}\x00-\x1f\x7f]{1,256}")
_NAMESPACE_RE: Final = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*")

_FRESH: Final = 0
_STALE: Final = 1
_INVALID: Final = 2

# New version for a missing key: Redis TIME in microseconds, so a re-created version key never
# repeats a value an old entry could still carry (versions only ever move forward).
_NOW_US = """
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
"""

_EXTEND_TTL = """
local function extend(key, ttl)
  local cur = redis.call('TTL', key)
  if cur == -1 or (cur >= 0 and cur < ttl) then redis.call('EXPIRE', key, ttl) end
end
"""

_INIT_VERSIONS_LUA = (
    _NOW_US
    + """
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, now, 'EX', ttl)
    v = now
  end
  out[i] = v
end
return out
"""
)

_BUMP_LUA = (
    _NOW_US
    + _EXTEND_TTL
    + """
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('INCR', key)
  else
    redis.call('SET', key, now)
  end
  extend(key, ttl)
  out[i] = redis.call('GET', key)
end
return out
"""
)

# KEYS: entry, lock, version keys...; ARGV: payload, px, lock token ('' for none), version ttl.
_WRITE_LUA = (
    _EXTEND_TTL
    + """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local vttl = tonumber(ARGV[4])
for i = 3, #KEYS do extend(KEYS[i], vttl) end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
)

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def resolve_ttl(ttl: int | float | str) -> float:
    """Seconds for a TTL given as seconds or as a tier name; anything else is a ValueError."""
    if isinstance(ttl, str):
        try:
            return float(TTL_TIERS[ttl])
        except KeyError:
            raise ValueError(
                f"unknown TTL tier {ttl!r}: use 'short' (300 s), 'default' (3600 s), "
                "'long' (86400 s) or a positive number of seconds"
            ) from None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise ValueError(f"ttl must be a tier name or a number of seconds, not {ttl!r}")
    if not math.isfinite(ttl) or ttl < 0.001:
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return float(ttl)


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


@lru_cache(maxsize=4096)
def _version_keys(namespace: str, tags: tuple[str, ...]) -> tuple[str, ...]:
    return (f"{namespace}:g", *(f"{namespace}:t:{tag}" for tag in tags))


def _supports_direct_reads(client: redis.Redis) -> bool:
    """Whether the hit path may take connections from the pool itself (a plain pool whose
    ``get_connection()`` needs no arguments, as in redis-py >= 5.3; not a single-connection
    client)."""
    pool = client.connection_pool
    if getattr(client, "connection", None) is not None or type(pool) is not redis.ConnectionPool:
        return False
    try:
        params = inspect.signature(pool.get_connection).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


class _Plan(NamedTuple):
    """What one (key, ttl, tags) request needs, computed once."""

    entry_key: str
    lock_key: str
    read_keys: tuple[str, ...]  # the entry, the generation, the tag versions: one MGET
    version_keys: tuple[str, ...]
    tags_blob: bytes
    prefix: str
    ttl_ms: int


_MAX_PLANS: Final = 10_000


class _Stats:
    """Thread-safe counters, in total and per key prefix (kept in process: a hit stays one trip)."""

    PER_PREFIX: Final = ("hits", "misses", "errors", "stale_hits")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._prefixes: dict[str, dict[str, int]] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._totals = dict.fromkeys(
                (
                    "hits",
                    "misses",
                    "errors",
                    "stale_hits",
                    "lock_waits",
                    "lock_timeouts",
                    "writes",
                    "invalidations",
                    "redis_skipped",
                ),
                0,
            )
            self._prefixes = {}

    def add(self, prefix: str | None, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                self._totals[name] += n
            if prefix is not None:
                bucket = self._prefixes.get(prefix)
                if bucket is None:
                    bucket = self._prefixes[prefix] = dict.fromkeys(self.PER_PREFIX, 0)
                for name, n in counts.items():
                    if name in bucket:
                        bucket[name] += n

    def hit(self, prefix: str) -> None:
        """The hot path's counter: one lock, two increments."""
        with self._lock:
            self._totals["hits"] += 1
            bucket = self._prefixes.get(prefix)
            if bucket is None:
                bucket = self._prefixes[prefix] = dict.fromkeys(self.PER_PREFIX, 0)
            bucket["hits"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            totals: dict[str, Any] = dict(self._totals)
            lookups = totals["hits"] + totals["misses"]
            totals["hit_ratio"] = totals["hits"] / lookups if lookups else 0.0
            totals["prefixes"] = {p: dict(c) for p, c in sorted(self._prefixes.items())}
            return totals


class MetricsCache:
    """Get-or-compute cache for dashboard reads, with tags, tiers and stampede protection."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = "metrics",
        stale_grace: float = 60.0,
        lock_ttl: float = 10.0,
        lock_wait: float = 2.0,
        tag_ttl: int = 7 * 86400,
        retry_after: float = 1.0,
        decoded_memo_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        """Wrap a redis-py client (bytes responses). Prefer `from_url`, which sets timeouts.

        ``stale_grace``: seconds (capped at the TTL) an expired value is kept to serve while one
        caller recomputes; 0 disables. ``lock_ttl``: how long a crashed computer can block
        others. ``lock_wait``: how long waiters poll before computing themselves.
        ``tag_ttl``: TTL of tag version keys. ``retry_after``: pause after a connection failure.
        ``decoded_memo_bytes``: how much JSON this process keeps decoded so that a repeated hit
        of an unchanged entry skips decoding (serving.memo); 0 disables.
        """
        ns = namespace.rstrip(":")
        if not _NAMESPACE_RE.fullmatch(ns):
            raise ValueError(
                f"namespace {namespace!r} must be letters, digits, '_', '.', '-' and ':'"
            )
        if stale_grace < 0 or lock_ttl <= 0 or lock_wait < 0 or tag_ttl <= 0 or retry_after < 0:
            raise ValueError("stale_grace, lock_wait, retry_after >= 0; lock_ttl, tag_ttl > 0")
        self.namespace = ns
        self.stale_grace = float(stale_grace)
        self.lock_ttl = float(lock_ttl)
        self.lock_wait = float(lock_wait)
        self.tag_ttl = int(tag_ttl)
        self.retry_after = float(retry_after)
        self._client = client
        self._memo = DecodedMemo(decoded_memo_bytes)
        self._execute: Callable[..., Any] = client.execute_command
        self._pool = client.connection_pool
        self._direct = _supports_direct_reads(client)
        self._stats = _Stats()
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._down_until = 0.0
        self._init_versions = client.register_script(_INIT_VERSIONS_LUA)
        self._bump = client.register_script(_BUMP_LUA)
        self._write = client.register_script(_WRITE_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        namespace: str = "metrics",
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        max_connections: int = 64,
        **options: Any,
    ) -> MetricsCache:
        """A cache on a pooled connection to ``url`` (default ``REDIS_URL``), with short timeouts.

        Extra keyword arguments (``stale_grace``, ``lock_wait`` ...) go to the constructor.
        """
        url = url or os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
        pool = redis.ConnectionPool.from_url(
            url,
            # A kernel socket timeout where possible: no poll() per call (realtime.kernel_timeout).
            **pool_options(url, socket_timeout),
            socket_connect_timeout=connect_timeout,
            max_connections=max_connections,
            health_check_interval=30,
            # One immediate retry survives a connection dropped by a Redis restart; more would
            # only multiply the wait when Redis is really down.
            retry=Retry(NoBackoff(), 1),
        )
        return cls(redis.Redis(connection_pool=pool), namespace=namespace, **options)

    @property
    def client(self) -> redis.Redis:
        """The underlying redis-py client."""
        return self._client

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def __enter__(self) -> MetricsCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entry_key(self, key: str) -> str:
        """The Redis key holding ``key``'s entry (for inspection and tests)."""
        return f"{self.namespace}:e:{key}"

    def _mget(self, keys: Sequence[str]) -> list[bytes | None]:
        return cast("list[bytes | None]", self._client.mget(keys))

    def _read(self, keys: tuple[str, ...]) -> list[bytes | None]:
        """The hit path's one round trip: MGET straight on a pooled connection.

        redis-py's generic command path (retry wrapper, observability hooks) costs about as much
        as the tag versions themselves, so the hot path does what it does, minus the hooks:
        one retry on a fresh connection after a connection error (a pooled connection may
        predate a Redis restart), and a connection in an unknown state is never reused.
        """
        if not self._direct:
            return cast("list[bytes | None]", self._execute("MGET", *keys))
        pool = self._pool
        conn: Any = pool.get_connection()  # redis-py leaves Connection untyped
        try:
            try:
                conn.send_command("MGET", *keys)
                return cast("list[bytes | None]", conn.read_response())
            except RedisConnectionError:
                conn.disconnect()
                conn.send_command("MGET", *keys)
                return cast("list[bytes | None]", conn.read_response())
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

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
        ekey = f"{self.namespace}:e:{key}"
        vkeys = _version_keys(self.namespace, ordered)
        lkey = f"{self.namespace}:l:{key}"
        plan = _Plan(ekey, lkey, (ekey, *vkeys), vkeys, tags_blob, key_prefix(key), ttl_ms)
        if memo_key is not None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[memo_key] = plan
        return plan

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], T],
        ttl: int | float | str = "default",
        tags: Iterable[str] = (),
    ) -> T:
        """The cached value of ``key``, or ``compute()``'s result, cached for ``ttl`` with ``tags``.

        Never raises because of Redis: on failure the value is computed and the error counted.
        Exceptions from ``compute`` propagate and nothing is cached. A key read with another tag
        set than it was written with is a miss (the entry cannot prove it is still valid).
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
        prefix = plan.prefix
        if self._down_until and self._redis_paused(prefix):
            return self._uncached(compute, decode)
        try:
            reply = self._read(plan.read_keys)
        except RedisError as error:
            self._redis_failed(prefix, error, misses=1)
            return self._uncached(compute, decode)
        raw = reply[0]
        versions = reply[1:]
        stale: bytes | None = None
        if raw is not None:
            state, body = self._check(raw, versions, plan.tags_blob)
            if state == _FRESH:
                if not decode:
                    self._stats.hit(prefix)
                    return body
                try:
                    value = self._memo.loads(key, body)
                except ValueError:
                    self._stats.add(prefix, errors=1)
                    logger.warning("cache entry %r is corrupt; recomputing", key)
                else:
                    self._stats.hit(prefix)
                    return value
            elif state == _STALE:
                stale = body
        return self._fill(plan, compute, versions, stale, decode)

    @staticmethod
    def _uncached(compute: Callable[[], Any], decode: bool) -> Any:
        """Compute without the cache (Redis unavailable)."""
        value = compute()
        return value if decode else dumps(value)

    @staticmethod
    def _check(raw: bytes, versions: Sequence[bytes | None], tags_blob: bytes) -> tuple[int, bytes]:
        """Whether an entry is fresh, stale (expired but valid) or invalid; and its JSON body."""
        header, sep, body = raw.partition(b"\n")
        parts = header.split(b" ", 3)
        if (
            not sep
            or len(parts) != 4
            or parts[0] != _FORMAT
            or None in versions
            or parts[3] != tags_blob
            or parts[2] != b",".join(versions)  # type: ignore[arg-type]
        ):
            return _INVALID, body
        try:
            expires = int(parts[1])
        except ValueError:
            return _INVALID, body
        return (_STALE if expires <= time.time() * 1000 else _FRESH), body

    def _fill(
        self,
        plan: _Plan,
        compute: Callable[[], Any],
        versions: list[bytes | None],
        stale: bytes | None,
        decode: bool,
    ) -> Any:
        """The miss path: take the lock and compute, or serve stale, or wait for the holder."""
        prefix = plan.prefix
        token = secrets.token_hex(8)
        try:
            acquired = bool(
                self._client.set(plan.lock_key, token, nx=True, px=int(self.lock_ttl * 1000))
            )
        except RedisError as error:
            self._redis_failed(prefix, error, misses=1)
            return self._uncached(compute, decode)
        if not acquired:
            if stale is not None:
                try:
                    stale_value = loads(stale) if decode else stale
                except ValueError:
                    pass
                else:
                    self._stats.add(prefix, hits=1, stale_hits=1)
                    return stale_value
            self._stats.add(prefix, lock_waits=1)
            outcome = self._wait(plan, token, decode)
            if outcome is None:  # Redis failed while waiting (already counted)
                self._stats.add(prefix, misses=1)
                return self._uncached(compute, decode)
            found, value, versions, acquired = outcome
            if found:
                self._stats.add(prefix, hits=1)
                return value
            if not acquired:
                self._stats.add(prefix, lock_timeouts=1)
        return self._compute_and_store(plan, token if acquired else "", compute, versions, decode)

    def _wait(
        self, plan: _Plan, token: str, decode: bool
    ) -> tuple[bool, Any, list[bytes | None], bool] | None:
        """Poll (bounded) for another caller's result: (found, value, versions, lock acquired).

        Returns None when Redis failed. If the lock frees up without a value (the holder failed
        or died), this caller takes it over.
        """
        deadline = time.monotonic() + self.lock_wait
        delay = 0.002
        versions: list[bytes | None] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, None, versions, False
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 0.05)
            try:
                reply = self._read(plan.read_keys)
                versions = reply[1:]
                if reply[0] is not None:
                    state, body = self._check(reply[0], versions, plan.tags_blob)
                    if state == _FRESH:
                        try:
                            return True, loads(body) if decode else body, versions, False
                        except ValueError:
                            pass
                if self._client.set(plan.lock_key, token, nx=True, px=int(self.lock_ttl * 1000)):
                    return False, None, versions, True
            except RedisError as error:
                self._redis_failed(plan.prefix, error)
                return None

    def _compute_and_store(
        self,
        plan: _Plan,
        token: str,
        compute: Callable[[], Any],
        versions: list[bytes | None],
        decode: bool,
    ) -> Any:
        """Compute (versions were read before, so a concurrent invalidation wins) and store."""
        known = self._ensure_versions(plan.version_keys, versions, plan.prefix)
        self._stats.add(plan.prefix, misses=1)
        try:
            value = compute()
            payload = dumps(value)
        except BaseException:
            if token:
                self._release_lock(plan.lock_key, token)
            raise
        if known is not None:
            self._store(plan, token, payload, known)
        elif token:
            self._release_lock(plan.lock_key, token)
        return value if decode else payload

    def _ensure_versions(
        self, vkeys: tuple[str, ...], versions: Sequence[bytes | None], prefix: str | None
    ) -> list[bytes] | None:
        """Current versions for ``vkeys``, creating missing ones; None if Redis failed."""
        if len(versions) == len(vkeys) and None not in versions:
            return list(versions)  # type: ignore[arg-type]
        try:
            created = self._init_versions(keys=list(vkeys), args=[self._version_ttl(0)])
        except RedisError as error:
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
        header = b"%s %d %s %s\n" % (_FORMAT, expires, b",".join(versions), plan.tags_blob)
        data = header + payload
        px = plan.ttl_ms + int(min(self.stale_grace * 1000, plan.ttl_ms))
        keys = [plan.entry_key, plan.lock_key, *plan.version_keys]
        return keys, [data, px, token, self._version_ttl(px)]

    def _store(self, plan: _Plan, token: str, payload: bytes, versions: Sequence[bytes]) -> None:
        keys, args = self._write_args(plan, token, payload, versions)
        try:
            self._write(keys=keys, args=args)
        except RedisError as error:
            self._redis_failed(plan.prefix, error)
        else:
            self._stats.add(plan.prefix, writes=1)

    def _release_lock(self, lkey: str, token: str) -> None:
        try:
            self._release(keys=[lkey], args=[token])
        except RedisError as error:  # it expires on its own
            self._redis_failed(None, error)

    # ------------------------------------------------------------------ Redis health

    def _redis_paused(self, prefix: str) -> bool:
        """True (and counted) while Redis is being left alone after a connection failure."""
        if self._down_until and time.monotonic() < self._down_until:
            self._stats.add(prefix, misses=1, errors=1, redis_skipped=1)
            return True
        return False

    def _redis_failed(self, prefix: str | None, error: RedisError, **extra: int) -> None:
        """Count a Redis failure; connection problems pause Redis use for ``retry_after``."""
        self._stats.add(prefix, errors=1, **extra)
        if isinstance(error, RedisConnectionError | RedisTimeoutError):
            if not (self._down_until and time.monotonic() < self._down_until):
                logger.warning(
                    "Redis unavailable for the metrics cache (%s); computing without cache "
                    "for %.1f s",
                    error,
                    self.retry_after,
                )
            self._down_until = time.monotonic() + self.retry_after
        else:
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
        keys = [f"{self.namespace}:t:{tag}" for tag in tag_list]
        try:
            new = self._bump(keys=keys, args=[self._version_ttl(0)])
        except RedisError as error:
            self._redis_failed(None, error)
            raise
        self._stats.add(None, invalidations=len(tag_list))
        return [int(v) for v in new]

    def clear_all(self, *, scan_budget: float = 2.0) -> int:
        """Invalidate every entry now (bump the namespace generation), then reclaim memory.

        The reclaiming is a bounded SCAN + UNLINK of this namespace's entries and locks (never
        KEYS); whatever the budget leaves behind is already invalid and expires by its TTL.
        Returns how many keys were removed. Raises Redis errors, like `invalidate_by_tag`.
        """
        try:
            self._bump(keys=[f"{self.namespace}:g"], args=[self._version_ttl(0)])
        except RedisError as error:
            self._redis_failed(None, error)
            raise
        self._stats.add(None, invalidations=1)
        self._memo.clear()
        removed = 0
        deadline = time.monotonic() + scan_budget
        try:
            for pattern in (f"{self.namespace}:e:*", f"{self.namespace}:l:*"):
                cursor = 0
                while True:
                    cursor, batch = cast(
                        "tuple[int, list[bytes]]",
                        self._client.scan(cursor=cursor, match=pattern, count=1000),
                    )
                    if batch:
                        removed += cast(int, self._client.unlink(*batch))
                    if cursor == 0 or time.monotonic() > deadline:
                        break
        except RedisError as error:  # the generation bump already made everything invalid
            self._redis_failed(None, error)
        return removed

    # ------------------------------------------------------------------ warming and stats

    def warm_cache(self, entries: Iterable[Mapping[str, Any]]) -> int:
        """Compute and store entries ahead of time; returns how many were written.

        Each entry is a mapping with ``key``, ``compute`` and optional ``ttl`` and ``tags``.
        Versions are read before computing, so an invalidation during warming still wins.
        If Redis is down nothing is computed and 0 is returned (the error is counted). If a
        compute raises, what was computed before it is still written, then the error propagates.
        """
        plans: list[tuple[str, Callable[[], Any], _Plan]] = []
        for entry in entries:
            try:
                key = entry["key"]
                compute = entry["compute"]
            except KeyError as missing:
                raise ValueError(f"warm_cache entry needs {missing}: {entry!r}") from None
            if not callable(compute):
                raise ValueError(f"warm_cache entry {key!r}: compute must be callable")
            plan = self._plan(key, entry.get("ttl", "default"), entry.get("tags", ()))
            plans.append((key, compute, plan))
        if not plans:
            return 0
        all_vkeys = list(dict.fromkeys(k for _, _, plan in plans for k in plan.version_keys))
        if self._down_until and time.monotonic() < self._down_until:
            self._stats.add(None, errors=1, redis_skipped=1)
            return 0
        try:
            current: dict[str, bytes | None] = dict(
                zip(all_vkeys, self._mget(all_vkeys), strict=True)
            )
        except RedisError as error:
            self._redis_failed(None, error)
            return 0
        if any(v is None for v in current.values()):
            created = self._ensure_versions(tuple(all_vkeys), [], None)
            if created is None:
                return 0
            current = dict(zip(all_vkeys, created, strict=True))
        ready: list[tuple[_Plan, list[str], list[bytes | int | str]]] = []
        try:
            for _, compute, plan in plans:
                payload = dumps(compute())
                versions = [cast(bytes, current[k]) for k in plan.version_keys]
                keys, args = self._write_args(plan, "", payload, versions)
                ready.append((plan, keys, args))
        finally:
            written = self._write_many(ready)
        return written

    def _write_many(self, ready: Sequence[tuple[_Plan, list[str], list[bytes | int | str]]]) -> int:
        """Run the write script for many entries in one pipelined round trip."""
        if not ready:
            return 0
        try:
            pipe = self._client.pipeline(transaction=False)
            for _, keys, args in ready:
                self._write(keys=keys, args=args, client=pipe)
            pipe.execute()
        except RedisError as error:
            self._redis_failed(None, error)
            return 0
        for plan, _, _ in ready:
            self._stats.add(plan.prefix, writes=1)
        return len(ready)

    def get_stats(self) -> dict[str, Any]:
        """Counters of this process: hits, misses, errors (Redis failures and skipped calls),
        stale_hits, lock_waits, lock_timeouts, writes, invalidations, hit_ratio, and ``prefixes``:
        hits/misses/errors/stale_hits per key prefix (the key up to its second ``:``)."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero every counter."""
        self._stats.reset()
