"""Nested cache namespaces (and realtime prefixes inside them) never touch each other's keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from realtime import RealtimeMetrics
from serving import MetricsCache


@pytest.fixture()
def base(redis_prefix: str) -> str:
    return redis_prefix.rstrip(":")


@pytest.fixture()
def caches(redis_url: str, base: str) -> Iterator[dict[str, MetricsCache]]:
    names = {
        "metrics": f"{base}:metrics",
        "tenant2": f"{base}:metrics:e:tenant2",
        "t": f"{base}:metrics:t",
        "l": f"{base}:metrics:l:x",
    }
    made = {short: MetricsCache.from_url(redis_url, namespace=ns) for short, ns in names.items()}
    yield made
    for cache in made.values():
        cache.close()


def _fill(cache: MetricsCache, calls: list[str]) -> None:
    cache.get_or_compute("k", lambda: calls.append(cache.namespace) or 1, tags=["g"])


def test_clear_all_leaves_nested_namespaces_and_realtime_keys_alone(
    caches: dict[str, MetricsCache], redis_url: str, base: str, raw_redis: redis.Redis
) -> None:
    calls: list[str] = []
    for cache in caches.values():
        _fill(cache, calls)
    with RealtimeMetrics.from_url(redis_url, prefix=f"{base}:metrics:e:") as rt:
        assert rt.increment_counter("hits", 5) == 5
        outside = sorted(raw_redis.scan_iter(match=f"{base}:metrics:e:*"))
        caches["metrics"].clear_all()
        assert rt.get_counter("hits") == 5
        assert sorted(raw_redis.scan_iter(match=f"{base}:metrics:e:*")) == outside
    for cache in caches.values():
        _fill(cache, calls)
    # Only the cleared namespace recomputed.
    assert calls == [*(c.namespace for c in caches.values()), caches["metrics"].namespace]


def test_invalidating_a_tag_touches_no_other_namespace(caches: dict[str, MetricsCache]) -> None:
    calls: list[str] = []
    for cache in caches.values():
        _fill(cache, calls)
    calls.clear()
    caches["metrics"].invalidate_by_tag("g")  # once the generation key of namespace metrics:t
    for cache in caches.values():
        _fill(cache, calls)
    assert calls == [caches["metrics"].namespace]
    calls.clear()
    caches["t"].clear_all()
    caches["tenant2"].invalidate_by_tag("g")
    for cache in caches.values():
        _fill(cache, calls)
    assert calls == [caches["tenant2"].namespace, caches["t"].namespace]


def test_every_key_of_a_namespace_sits_under_its_own_root(
    caches: dict[str, MetricsCache], raw_redis: redis.Redis
) -> None:
    calls: list[str] = []
    for cache in caches.values():
        _fill(cache, calls)
        cache.invalidate_by_tag("g")
    roots = [cache.layout.root for cache in caches.values()]
    for cache in caches.values():
        mine = {k.decode() for k in raw_redis.scan_iter(match=f"{cache.layout.root}*")}
        assert mine and all(
            not key.startswith(root) for key in mine for root in roots if root != cache.layout.root
        )


@pytest.mark.parametrize("bad", ["", "a::b", ":", "a b", "a:{b}", "a*", "a?b", "a[b]"])
def test_namespace_must_be_plain_segments(redis_url: str, bad: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        MetricsCache.from_url(redis_url, namespace=bad)
