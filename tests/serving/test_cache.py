"""MetricsCache on the real Redis: hits, tiers, expiry, tags, clear_all, warming, stats, locks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import redis

from serving.cache import TTL_TIERS, MetricsCache
from serving.serialization import SerializationError
from tests.serving.entries import expire_logically


class Counter:
    """A compute function that counts its calls and returns a fresh value each time."""

    def __init__(self, value: Any = "v") -> None:
        self.value = value
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            self.calls += 1
            n = self.calls
        return {"value": self.value, "call": n}


@pytest.fixture()
def make_cache(redis_url: str, redis_prefix: str) -> Iterator[Callable[..., MetricsCache]]:
    """Caches on this test's namespace with custom options."""
    made: list[MetricsCache] = []

    def make(**options: Any) -> MetricsCache:
        c = MetricsCache.from_url(redis_url, namespace=redis_prefix, **options)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_miss_then_hit(cache: MetricsCache) -> None:
    compute = Counter()
    first = cache.get_or_compute("metrics:daily:asset:a1:2025-03-04", compute)
    second = cache.get_or_compute("metrics:daily:asset:a1:2025-03-04", compute)
    assert first == second == {"value": "v", "call": 1}
    assert compute.calls == 1
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (1, 1, 0)


def test_values_round_trip_through_redis(cache: MetricsCache) -> None:
    value = {"day": date(2025, 3, 4), "avg": Decimal("12.345678"), "rows": [[1, None, 2.5]]}
    cache.get_or_compute("k:types", lambda: value)
    assert cache.get_or_compute("k:types", lambda: pytest.fail("recomputed")) == value


def test_every_key_is_under_the_namespace(
    cache: MetricsCache, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    marker = f"nsprobe{id(cache)}"
    cache.get_or_compute(f"metrics:daily:{marker}", Counter(), tags=[f"tag{marker}"])
    cache.invalidate_by_tag(f"tag{marker}")
    cache.get_or_compute(f"metrics:daily:{marker}", Counter(), tags=[f"tag{marker}"])
    cache.clear_all()
    touched = [k.decode() for k in raw_redis.scan_iter(match=f"*{marker}*", count=1000)]
    assert touched
    root = cache.layout.root
    assert root == "{" + redis_prefix + ":}"  # the namespace, hash-tagged (one cluster slot)
    assert all(k.startswith(root) for k in touched)
    generation = [k.decode() for k in raw_redis.scan_iter(match=f"{root}*", count=1000)]
    assert f"{root}g" in generation and all(k.startswith(root) for k in generation)


@pytest.mark.parametrize(("tier", "seconds"), [*TTL_TIERS.items(), (42, 42), (2.5, 2.5)])
def test_ttl_tiers_set_the_expiry(
    make_cache: Callable[..., MetricsCache], raw_redis: redis.Redis, tier: Any, seconds: float
) -> None:
    cache = make_cache(stale_grace=0)
    cache.get_or_compute("k:tier", Counter(), ttl=tier)
    pttl = raw_redis.pttl(cache.entry_key("k:tier"))
    assert seconds * 1000 - 2000 < pttl <= seconds * 1000


def test_contract_tiers() -> None:
    assert TTL_TIERS == {"short": 300, "default": 3600, "long": 86400}


def test_stale_grace_extends_the_redis_ttl_only(
    cache: MetricsCache, raw_redis: redis.Redis
) -> None:
    cache.get_or_compute("k:grace", Counter(), ttl="short")
    pttl = raw_redis.pttl(cache.entry_key("k:grace"))
    expected = (300 + cache.stale_grace) * 1000
    assert expected - 2000 < pttl <= expected


@pytest.mark.parametrize("bad", ["forever", "", "5", 0, -1, True, None, float("inf"), [60]])
def test_invalid_ttl_raises(cache: MetricsCache, bad: Any) -> None:
    with pytest.raises(ValueError, match=r"ttl|TTL"):
        cache.get_or_compute("k:bad", Counter(), ttl=bad)


def test_expiry(make_cache: Callable[..., MetricsCache]) -> None:
    cache = make_cache()
    compute = Counter()
    cache.get_or_compute("k:exp", compute, ttl=1)
    cache.get_or_compute("k:exp", compute, ttl=1)
    assert compute.calls == 1
    time.sleep(1.1)
    assert cache.get_or_compute("k:exp", compute, ttl=1)["call"] == 2
    assert cache.get_stats()["misses"] == 2


def test_expiry_without_grace_removes_the_key(
    make_cache: Callable[..., MetricsCache], raw_redis: redis.Redis
) -> None:
    cache = make_cache(stale_grace=0)
    cache.get_or_compute("k:exp0", Counter(), ttl=1)
    time.sleep(1.1)
    assert raw_redis.exists(cache.entry_key("k:exp0")) == 0


def test_tag_invalidation_hits_exactly_the_tagged_entries(cache: MetricsCache) -> None:
    a, b, c = Counter("a"), Counter("b"), Counter("c")

    def read_all() -> None:
        cache.get_or_compute("k:a", a, tags=["t1", "t2"])
        cache.get_or_compute("k:b", b, tags=["t2"])
        cache.get_or_compute("k:c", c, tags=["t3"])

    read_all()
    read_all()
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)
    cache.invalidate_by_tag("t1")
    read_all()
    assert (a.calls, b.calls, c.calls) == (2, 1, 1)
    cache.invalidate_by_tag("t2")
    read_all()
    assert (a.calls, b.calls, c.calls) == (3, 2, 1)
    read_all()
    assert (a.calls, b.calls, c.calls) == (3, 2, 1)
    assert cache.get_stats()["invalidations"] == 2


def test_tags_belong_to_the_entry_written(cache: MetricsCache) -> None:
    compute = Counter()
    cache.get_or_compute("k:ord", compute, tags=["x", "y"])
    # Read with the same tags in another order, with other tags, or with none: all hits.
    cache.get_or_compute("k:ord", compute, tags=["y", "x", "x"])
    cache.get_or_compute("k:ord", compute, tags=["x"])
    cache.get_or_compute("k:ord", compute, tags=["other"])
    cache.get_or_compute("k:ord", compute)
    assert compute.calls == 1
    assert cache.get_stats()["hits"] == 4
    # The entry's own tags decide: invalidating a tag the reader passed but the entry does not
    # carry changes nothing; invalidating one the entry carries makes the next read a miss.
    cache.invalidate_by_tag("other")
    cache.get_or_compute("k:ord", compute, tags=["other"])
    assert compute.calls == 1
    cache.invalidate_by_tag("y")
    cache.get_or_compute("k:ord", compute)  # rewritten with no tags
    assert compute.calls == 2
    cache.invalidate_by_tag("x")
    cache.get_or_compute("k:ord", compute, tags=["x"])
    assert compute.calls == 2


def test_proofs_never_outlive_the_entry_or_the_stamp(
    cache: MetricsCache, redis_url: str, raw_redis: redis.Redis
) -> None:
    """A process remembers the entries it proved valid under the stamp; another process
    rewriting the entry with other tags, or an invalidation by any process, still decides."""
    other = MetricsCache.from_url(redis_url, namespace=cache.namespace)  # another process
    try:
        compute = Counter()
        other.get_or_compute("k:learn", compute, tags=["a", "b"])
        for _ in range(3):  # the first read proves the entry, the next use the proof
            assert cache.get_or_compute("k:learn", compute, tags=["c"])["call"] == 1
        other.invalidate_by_tag("b")
        assert cache.get_or_compute("k:learn", compute, tags=["c"])["call"] == 2  # now own tag
        other.invalidate_by_tag("a")
        assert cache.get_or_compute("k:learn", compute, tags=["c"])["call"] == 2
        assert other.get_or_compute("k:learn", compute, tags=["a", "b"])["call"] == 2
        other.invalidate_by_tag("c")
        assert other.get_or_compute("k:learn", compute, tags=["a", "b"])["call"] == 3
        assert cache.get_or_compute("k:learn", compute, tags=["c"])["call"] == 3  # proves it
        cache.invalidate_by_tag("a")
        assert cache.get_or_compute("k:learn", compute, tags=["c"])["call"] == 4
        assert cache.get_or_compute("k:learn", compute, tags=["c"])["call"] == 4  # proven
        other.clear_all()  # another process's clear_all also ends every proof
        assert cache.get_or_compute("k:learn", compute, tags=["c"])["call"] == 5
        # A header naming what cannot be a tag (a brace would leave the slot) is a miss.
        raw = raw_redis.get(cache.entry_key("k:learn"))
        header, _, body = raw.partition(b"\n")
        fields = header.split(b" ")
        raw_redis.set(cache.entry_key("k:learn"), b" ".join([*fields[:3], b"{x}"]) + b"\n" + body)
        assert cache.get_or_compute("k:learn", compute)["call"] == 6
        stats = cache.get_stats()
        assert (stats["hits"], stats["errors"]) == (6, 0)
    finally:
        other.close()


def test_invalidation_is_o1_and_leaves_no_tag_sets(
    cache: MetricsCache, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    for i in range(50):
        cache.get_or_compute(f"k:many:{i}", Counter(), tags=["shared"])
    cache.invalidate_by_tag("shared")
    version_key = f"{cache.layout.root}t:shared"
    assert raw_redis.type(version_key) == b"string"
    assert 0 < raw_redis.ttl(version_key) <= max(cache.tag_ttl, 3600 + 60) + 1
    keys = list(raw_redis.scan_iter(match=f"{cache.layout.root}*", count=1000))
    assert len(keys) == 50 + 3  # the entries, one tag version, the generation, the stamp


def test_invalidating_an_unknown_tag_starts_from_redis_time(cache: MetricsCache) -> None:
    assert cache.invalidate_by_tag("never-seen") > 10**15
    assert cache.invalidate_tags(["never-seen", "other"])[0] > 10**15


def test_evicted_tag_version_never_revives_old_entries(
    cache: MetricsCache, raw_redis: redis.Redis, redis_url: str
) -> None:
    """A missing version makes an entry a miss wherever it has to be proven: in a process that
    has no proof of it, and in every process once anything was invalidated. (A process that
    proved it under the current stamp keeps it: nothing was invalidated since.)"""
    other = MetricsCache.from_url(redis_url, namespace=cache.namespace)  # another process
    try:
        compute = Counter()
        cache.get_or_compute("k:evict", compute, tags=["t"])
        raw_redis.delete(f"{cache.layout.root}t:t")  # as if evicted or expired
        assert other.get_or_compute("k:evict", compute, tags=["t"])["call"] == 2
        assert other.get_or_compute("k:evict", compute, tags=["t"])["call"] == 2
        assert cache.get_or_compute("k:evict", compute, tags=["t"])["call"] == 2

        raw_redis.delete(f"{cache.layout.root}t:t")
        cache.invalidate_by_tag("unrelated")  # moves the stamp: proofs are made again
        assert cache.get_or_compute("k:evict", compute, tags=["t"])["call"] == 3
        assert other.get_or_compute("k:evict", compute, tags=["t"])["call"] == 3
    finally:
        other.close()


def test_invalidation_during_compute_wins(cache: MetricsCache) -> None:
    calls = []

    def compute() -> str:
        calls.append(1)
        if len(calls) == 1:
            cache.invalidate_by_tag("race")  # a rollup changed while we were reading it
        return f"v{len(calls)}"

    assert cache.get_or_compute("k:race", compute, tags=["race"]) == "v1"
    assert cache.get_or_compute("k:race", compute, tags=["race"]) == "v2"
    assert cache.get_or_compute("k:race", compute, tags=["race"]) == "v2"


def test_clear_all_uses_no_keys_command(
    cache: MetricsCache, raw_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    compute = Counter()
    for i in range(30):
        cache.get_or_compute(f"k:clear:{i}", compute, tags=["t"])
    sent: list[str] = []
    original = cache.client.execute_command

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]).upper())
        return original(*args, **kwargs)

    monkeypatch.setattr(cache.client, "execute_command", spy)
    removed = cache.clear_all()
    assert "KEYS" not in sent
    assert "SCAN" in sent
    assert removed == 30
    assert list(raw_redis.scan_iter(match=f"{cache.layout.root}e:*")) == []
    cache.get_or_compute("k:clear:0", compute, tags=["t"])
    assert compute.calls == 31


def test_clear_all_invalidates_even_what_the_scan_misses(
    cache: MetricsCache, raw_redis: redis.Redis
) -> None:
    compute = Counter()
    cache.get_or_compute("k:gen", compute)
    raw = raw_redis.get(cache.entry_key("k:gen"))
    cache.clear_all()
    raw_redis.set(cache.entry_key("k:gen"), raw, px=60_000)  # an entry the scan did not reach
    cache.get_or_compute("k:gen", compute)
    assert compute.calls == 2


def test_warm_cache(cache: MetricsCache) -> None:
    a, b, c = Counter("a"), Counter("b"), Counter("c")
    written = cache.warm_cache(
        [
            {"key": "metrics:daily:w:a", "compute": a},
            {"key": "metrics:daily:w:b", "compute": b, "ttl": "short", "tags": ["wb"]},
            {"key": "metrics:weekly:w:c", "compute": c, "ttl": 120, "tags": ("wc", "w")},
        ]
    )
    assert written == 3
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)
    cache.get_or_compute("metrics:daily:w:a", a)
    cache.get_or_compute("metrics:daily:w:b", b, ttl="short", tags=["wb"])
    cache.get_or_compute("metrics:weekly:w:c", c, ttl=120, tags=["w", "wc"])
    assert (a.calls, b.calls, c.calls) == (1, 1, 1)
    cache.invalidate_by_tag("wc")
    cache.get_or_compute("metrics:weekly:w:c", c, ttl=120, tags=["w", "wc"])
    assert c.calls == 2
    assert cache.get_stats()["writes"] == 4


def test_warm_cache_sets_tiers(cache: MetricsCache, raw_redis: redis.Redis) -> None:
    cache.warm_cache([{"key": "k:wt", "compute": Counter(), "ttl": "long"}])
    grace = cache.stale_grace * 1000
    assert 86_400_000 + grace - 2000 < raw_redis.pttl(cache.entry_key("k:wt")) <= 86_400_000 + grace


def test_warm_cache_validates_entries(cache: MetricsCache) -> None:
    with pytest.raises(ValueError, match="compute"):
        cache.warm_cache([{"key": "k:x"}])
    with pytest.raises(ValueError, match="key"):
        cache.warm_cache([{"compute": Counter()}])
    with pytest.raises(ValueError):
        cache.warm_cache([{"key": "k:x", "compute": Counter(), "ttl": "eternal"}])
    assert cache.warm_cache([]) == 0


def test_warm_cache_keeps_what_was_computed_before_a_failure(cache: MetricsCache) -> None:
    def boom() -> None:
        raise RuntimeError("warehouse down")

    ok = Counter()
    with pytest.raises(RuntimeError):
        cache.warm_cache([{"key": "k:ok", "compute": ok}, {"key": "k:boom", "compute": boom}])
    cache.get_or_compute("k:ok", ok)
    assert ok.calls == 1


def test_stats_per_prefix(cache: MetricsCache) -> None:
    cache.get_or_compute("metrics:daily:asset:a1:2025-03-01", Counter())
    cache.get_or_compute("metrics:daily:asset:a1:2025-03-01", Counter())
    cache.get_or_compute("metrics:daily:asset:a1:2025-03-02", Counter())
    cache.get_or_compute("metrics:dashboard:u1:asset:7d", Counter())
    cache.get_or_compute("metrics:dashboard:u1:asset:7d", Counter())
    cache.get_or_compute("metrics:dashboard:u1:asset:7d", Counter())
    stats = cache.get_stats()
    assert stats["hits"] == 3 and stats["misses"] == 3 and stats["errors"] == 0
    assert stats["hit_ratio"] == pytest.approx(0.5)
    assert stats["prefixes"]["metrics:daily"] == {
        "hits": 1,
        "misses": 2,
        "errors": 0,
        "stale_hits": 0,
    }
    assert stats["prefixes"]["metrics:dashboard"]["hits"] == 2
    cache.reset_stats()
    assert cache.get_stats()["hits"] == 0 and cache.get_stats()["prefixes"] == {}


def test_corrupt_entry_is_recomputed_and_counted(
    cache: MetricsCache, raw_redis: redis.Redis
) -> None:
    compute = Counter()
    cache.get_or_compute("k:corrupt", compute)
    raw = raw_redis.get(cache.entry_key("k:corrupt"))
    header, _, _ = raw.partition(b"\n")
    raw_redis.set(cache.entry_key("k:corrupt"), header + b"\n{not json", px=60_000)
    assert cache.get_or_compute("k:corrupt", compute)["call"] == 2
    assert cache.get_stats()["errors"] == 1
    raw_redis.set(cache.entry_key("k:corrupt"), b"garbage", px=60_000)
    assert cache.get_or_compute("k:corrupt", compute)["call"] == 3
    versions = header.split(b" ")[2]
    raw_redis.set(cache.entry_key("k:corrupt"), b"c1 soon " + versions + b" \n{}", px=60_000)
    assert cache.get_or_compute("k:corrupt", compute)["call"] == 4
    raw_redis.hset(cache.entry_key("k:wrongtype"), "a", "b")  # not even a string: MGET sees nil
    assert cache.get_or_compute("k:wrongtype", compute)["call"] == 5
    assert cache.get_or_compute("k:wrongtype", compute)["call"] == 5  # overwritten, then a hit
    assert cache.get_stats()["errors"] == 1


def test_stale_value_is_served_while_another_caller_recomputes(
    make_cache: Callable[..., MetricsCache], raw_redis: redis.Redis
) -> None:
    cache = make_cache(stale_grace=30)
    first = cache.get_or_compute("k:stale", Counter("old"), ttl=60)
    expire_logically(raw_redis, cache.entry_key("k:stale"))
    raw_redis.set(f"{cache.layout.root}l:k:stale", "someone-else", px=60_000)
    fresh = Counter("new")
    assert cache.get_or_compute("k:stale", fresh, ttl=60) == first
    assert fresh.calls == 0
    assert cache.get_stats()["stale_hits"] == 1


def test_invalidated_value_is_never_served_stale(
    make_cache: Callable[..., MetricsCache], raw_redis: redis.Redis
) -> None:
    cache = make_cache(stale_grace=30, lock_wait=0.2)
    cache.get_or_compute("k:inv", Counter("old"), ttl=60, tags=["t"])
    expire_logically(raw_redis, cache.entry_key("k:inv"))  # in its grace: stale if still valid
    cache.invalidate_by_tag("t")
    raw_redis.set(f"{cache.layout.root}l:k:inv", "someone-else", px=5000)
    assert cache.get_or_compute("k:inv", Counter("new"), ttl=60, tags=["t"])["value"] == "new"


def test_lock_of_a_dead_holder_expires(
    make_cache: Callable[..., MetricsCache], raw_redis: redis.Redis
) -> None:
    cache = make_cache(lock_wait=30)
    lock = f"{cache.layout.root}l:k:dead"
    raw_redis.set(lock, "crashed-holder", px=1000)
    compute = Counter()
    assert cache.get_or_compute("k:dead", compute)["call"] == 1
    assert compute.calls == 1
    # It waited for the lock, which expired and was taken over within the wait (no timeout);
    # counted, not timed: a stall of the machine cannot change these.
    stats = cache.get_stats()
    assert (stats["lock_waits"], stats["lock_timeouts"]) == (1, 0)
    assert raw_redis.exists(lock) == 0  # released by its new holder


def test_waiting_is_bounded_then_computes_locally(
    make_cache: Callable[..., MetricsCache], raw_redis: redis.Redis
) -> None:
    cache = make_cache(lock_wait=0.3)
    lock = f"{cache.layout.root}l:k:slow"
    raw_redis.set(lock, "slow-holder", px=60_000)
    assert cache.get_or_compute("k:slow", Counter())["call"] == 1
    assert cache.get_stats()["lock_timeouts"] == 1
    # It gave up waiting and computed while the holder still held its lock (60 s): it did not
    # wait for the holder. Counted, not timed, so a stall of the machine cannot change it.
    assert raw_redis.get(lock) == b"slow-holder"


def test_compute_error_propagates_releases_lock_and_caches_nothing(
    cache: MetricsCache, raw_redis: redis.Redis
) -> None:
    def boom() -> None:
        raise ZeroDivisionError("bad")

    with pytest.raises(ZeroDivisionError):
        cache.get_or_compute("k:boom", boom)
    assert raw_redis.exists(f"{cache.layout.root}l:k:boom") == 0
    assert raw_redis.exists(cache.entry_key("k:boom")) == 0
    assert cache.get_or_compute("k:boom", Counter())["call"] == 1


def test_unserializable_value_raises_and_releases_lock(
    cache: MetricsCache, raw_redis: redis.Redis
) -> None:
    with pytest.raises(SerializationError):
        cache.get_or_compute("k:set", lambda: {1, 2})
    assert raw_redis.exists(f"{cache.layout.root}l:k:set") == 0


@pytest.mark.parametrize("bad", ["", "has space", "{slot}x", "a\nb", "x" * 1025])
def test_invalid_keys_are_rejected(cache: MetricsCache, bad: str) -> None:
    with pytest.raises(ValueError, match="key"):
        cache.get_or_compute(bad, Counter())


def test_invalid_tags_are_rejected(cache: MetricsCache) -> None:
    with pytest.raises(TypeError):
        cache.get_or_compute("k:t", Counter(), tags="grain:daily")
    with pytest.raises(ValueError, match="tag"):
        cache.get_or_compute("k:t", Counter(), tags=["has space"])
    with pytest.raises(ValueError, match="tag"):
        cache.invalidate_by_tag("{x}")


def test_invalid_namespace_is_rejected(redis_url: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        MetricsCache.from_url(redis_url, namespace="bad*ns")


def test_single_connection_client_works_too(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, single_connection_client=True)
    cache = MetricsCache(client, namespace=redis_prefix)
    compute = Counter()
    cache.get_or_compute("k:single", compute, tags=["t"])
    cache.get_or_compute("k:single", compute, tags=["t"])
    assert compute.calls == 1
    client.close()


def test_get_or_compute_json_returns_the_stored_bytes(cache: MetricsCache) -> None:
    compute = Counter()
    first = cache.get_or_compute_json("k:json", compute, tags=["t"])
    second = cache.get_or_compute_json("k:json", compute, tags=["t"])
    assert first == second == b'{"value":"v","call":1}'
    assert json.loads(second) == {"value": "v", "call": 1}
    # The decoded and the raw reads share one entry.
    assert cache.get_or_compute("k:json", compute, tags=["t"]) == {"value": "v", "call": 1}
    assert compute.calls == 1
    cache.invalidate_by_tag("t")
    assert json.loads(cache.get_or_compute_json("k:json", compute, tags=["t"]))["call"] == 2


def test_get_or_compute_json_when_redis_is_down(closed_port: int) -> None:
    cache = MetricsCache.from_url(f"redis://127.0.0.1:{closed_port}/0")
    assert cache.get_or_compute_json("k", lambda: {"d": date(2025, 3, 4)}) == (
        b'{"d":{"$date":"2025-03-04"}}'
    )
    assert cache.get_stats()["errors"] == 1


def test_warm_cache_takes_typed_entries_and_mappings(cache: MetricsCache) -> None:
    from serving.cache import CacheEntry

    a, b = Counter("a"), Counter("b")
    assert (
        cache.warm_cache(
            [CacheEntry("k:typed", a, ttl="short", tags=("t",)), {"key": "k:mapped", "compute": b}]
        )
        == 2
    )
    cache.get_or_compute("k:typed", a)
    cache.get_or_compute("k:mapped", b)
    assert (a.calls, b.calls) == (1, 1)
    with pytest.raises(ValueError, match="unknown fields"):
        cache.warm_cache([{"key": "k:x", "compute": a, "tag": ["t"]}])
    with pytest.raises(ValueError, match="compute must be callable"):
        CacheEntry("k:x", "not callable")  # type: ignore[arg-type]
