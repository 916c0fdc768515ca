"""`MetricsCache.fresh_json`: the event-loop hit the HTTP server uses before falling back to the
blocking get-or-compute. It returns only fresh, valid entries and counts only hits."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import RedisClusterException

from serving.cache import MetricsCache
from tests.serving.entries import expire_logically

KEY = "metrics:dashboard:asset:a1:30d"


def _fresh(cache: MetricsCache, key: str = KEY, tags: tuple[str, ...] = ()) -> bytes | None:
    async def read() -> bytes | None:
        try:
            return await cache.fresh_json(key, tags=tags)
        finally:
            await cache.aclose()

    return asyncio.run(read())


def test_a_fresh_entry_is_returned_as_the_same_bytes_and_counted_once(
    cache: MetricsCache,
) -> None:
    stored = cache.get_or_compute_json(KEY, lambda: {"total": 42}, tags=("asset:a1",))
    assert _fresh(cache) == _fresh(cache, tags=("other",)) == stored
    assert json.loads(stored) == {"total": 42}
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (2, 1, 0)


def test_a_miss_or_an_invalidated_entry_is_none_and_not_counted(cache: MetricsCache) -> None:
    assert _fresh(cache) is None
    cache.get_or_compute_json(KEY, lambda: {"total": 1}, tags=("asset:a1",))
    cache.invalidate_by_tag("asset:a1")
    assert _fresh(cache) is None
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (0, 1, 0)


def test_an_expired_entry_is_none_so_the_blocking_path_serves_it_stale(
    cache: MetricsCache,
) -> None:
    cache.get_or_compute_json(KEY, lambda: {"total": 1}, ttl=1)
    expire_logically(cache.client, cache.entry_key(KEY))
    assert _fresh(cache) is None


def test_planted_garbage_is_none_never_an_exception(cache: MetricsCache) -> None:
    cache.get_or_compute_json(KEY, lambda: {"total": 1})
    cache.client.set(cache.entry_key(KEY), b"c2 not-a-number 1\n{}")
    assert _fresh(cache) is None


def test_redis_unreachable_is_none(closed_port: int) -> None:
    cache = MetricsCache.from_url(f"redis://127.0.0.1:{closed_port}/0", namespace="down")
    try:
        assert _fresh(cache) is None
    finally:
        cache.close()


def test_without_an_asyncio_client_it_is_always_none(cache: MetricsCache) -> None:
    cache.get_or_compute_json(KEY, lambda: {"total": 1})
    plain = MetricsCache(cache.client, namespace=cache.namespace)
    assert _fresh(plain) is None


def test_concurrent_reads_each_get_their_own_entry(cache: MetricsCache) -> None:
    """Reads of one event-loop turn travel in one pipeline; each answer is still its own."""
    stored = {
        n: cache.get_or_compute_json(f"{KEY}:{n}", lambda n=n: {"n": n}, tags=(f"t{n}",))
        for n in range(4)
    }
    cache.invalidate_by_tag("t3")

    async def read() -> list[bytes | None]:
        try:
            return list(
                await asyncio.gather(
                    *(cache.fresh_json(f"{KEY}:{n}", tags=(f"t{n}",)) for n in range(4)),
                    cache.fresh_json(f"{KEY}:missing"),
                )
            )
        finally:
            await cache.aclose()

    assert asyncio.run(read()) == [stored[0], stored[1], stored[2], None, None]
    assert cache.get_stats()["hits"] == 3


def test_a_cluster_usage_error_is_raised_not_taken_for_an_outage(
    redis_url: str, redis_prefix: str
) -> None:
    """Regression: every RedisClusterException was an outage to the cache, so an asyncio
    cluster client on a Redis that is no cluster made every hit None, silently. A usage error
    now surfaces, as it does in the realtime client (realtime.availability.unavailable)."""
    cache = MetricsCache(
        redis.Redis.from_url(redis_url),
        namespace=f"{redis_prefix}usage",
        async_client=lambda: AsyncRedisCluster.from_url(redis_url),
    )
    cache.get_or_compute_json(KEY, lambda: {"total": 1})
    with pytest.raises(RedisClusterException, match="Cluster mode is not enabled"):
        _fresh(cache)
    assert cache.get_stats()["errors"] == 0
    cache.close()
