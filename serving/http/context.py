"""What every request handler shares: settings, warehouse connections, Redis clients, tokens."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

from realtime import RealtimeMetrics
from realtime.environment import redis_cluster_from_env
from serving.cache import MetricsCache
from serving.http.connections import ConnectionPool
from serving.http.tokens import TokenRecord, TokenStore, hash_token
from warehouse import WarehouseConfig


@dataclass(frozen=True)
class ServerSettings:
    """How the server reaches the warehouse and Redis; defaults come from the environment."""

    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)
    redis_url: str = field(
        default_factory=lambda: os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
    )
    # The same Redis names Dagster's sensors and jobs use, so invalidations reach this server.
    realtime_prefix: str = field(
        default_factory=lambda: os.environ.get("METRICS_REALTIME_PREFIX", "").strip() or "rt:"
    )
    cache_namespace: str = field(
        default_factory=lambda: os.environ.get("METRICS_CACHE_NAMESPACE", "").strip() or "metrics"
    )
    # REDIS_URL names a node of a Redis Cluster (METRICS_REDIS_CLUSTER=1).
    redis_cluster: bool = field(default_factory=lambda: redis_cluster_from_env())
    # A revoked token stops working within this many seconds (lookups are memoized this long).
    token_memo_seconds: float = 5.0
    session_seconds: int = 12 * 3600
    # DuckDB: let go of the file after this long without requests (builds can write then).
    duckdb_idle_seconds: float = 1.0


_LOOKUP_LOCKS = 64


class ServerContext:
    """The long-lived objects of one server process."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.pool = ConnectionPool(settings.warehouse, idle_seconds=settings.duckdb_idle_seconds)
        self._tokens: dict[str, tuple[float, TokenRecord | None]] = {}
        self._tokens_lock = threading.Lock()
        # When a memo ends, the requests carrying that token wait for one lookup instead of
        # each querying the warehouse (a token picks its lock by its hash).
        self._lookup_locks = tuple(threading.Lock() for _ in range(_LOOKUP_LOCKS))

    @cached_property
    def cache(self) -> MetricsCache:
        return MetricsCache.from_url(
            self.settings.redis_url,
            namespace=self.settings.cache_namespace,
            cluster=self.settings.redis_cluster,
        )

    @cached_property
    def realtime(self) -> RealtimeMetrics:
        return RealtimeMetrics.from_url(
            self.settings.redis_url,
            prefix=self.settings.realtime_prefix,
            cluster=self.settings.redis_cluster,
        )

    def remembered_token(self, text: str) -> tuple[bool, TokenRecord | None]:
        """(True, record) when a lookup of this token is still memoized; no I/O."""
        return self._remembered(hash_token(text))

    def _remembered(self, memo_key: str) -> tuple[bool, TokenRecord | None]:
        with self._tokens_lock:
            memo = self._tokens.get(memo_key)
        if memo is not None and memo[0] > time.monotonic():
            return True, memo[1]
        return False, None

    def token(self, text: str) -> TokenRecord | None:
        """The live token with this text (memoized briefly), or None. Concurrent requests
        with a token whose memo has ended share one warehouse lookup."""
        memo_key = hash_token(text)
        known, remembered = self._remembered(memo_key)
        if known:
            return remembered
        if self.settings.token_memo_seconds <= 0:
            return self._look_up(text)
        with self._lookup_locks[int(memo_key[:8], 16) % _LOOKUP_LOCKS]:
            known, remembered = self._remembered(memo_key)  # another request just looked it up
            if known:
                return remembered
            now = time.monotonic()
            record = self._look_up(text)
            with self._tokens_lock:
                if len(self._tokens) > 10_000:
                    self._tokens.clear()
                self._tokens[memo_key] = (now + self.settings.token_memo_seconds, record)
        return record

    def _look_up(self, text: str) -> TokenRecord | None:
        with self.pool.connection() as wh:
            return TokenStore(wh).lookup(text)

    def close(self) -> None:
        """Close the warehouse connections and Redis clients this process opened."""
        self.pool.close()
        for name in ("cache", "realtime"):
            if name in self.__dict__:
                self.__dict__[name].close()
