"""Stampede protection: many concurrent misses of one key compute once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from serving.cache import MetricsCache
from tests.serving.entries import expire_logically

THREADS = 20


def _race(caches: list[MetricsCache], key: str, compute: Callable[[], Any], **kw: Any) -> list[Any]:
    """Call get_or_compute from THREADS threads released at once; returns their results."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = caches[i % len(caches)].get_or_compute(key, compute, **kw)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors, errors
    return results


class SlowCompute:
    def __init__(self, seconds: float = 0.3) -> None:
        self.seconds = seconds
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        with self._lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.seconds)
        return {"call": n}


@pytest.mark.timeout(60)
def test_concurrent_misses_compute_once(redis_url: str, redis_prefix: str) -> None:
    # Two cache objects stand for two app servers sharing one Redis.
    caches = [MetricsCache.from_url(redis_url, namespace=redis_prefix) for _ in range(2)]
    compute = SlowCompute()
    results = _race(caches, "metrics:dashboard:u:asset:30d", compute, tags=["t"])
    assert compute.calls == 1
    assert results == [{"call": 1}] * THREADS
    stats = [c.get_stats() for c in caches]
    assert sum(s["misses"] for s in stats) == 1
    assert sum(s["hits"] for s in stats) == THREADS - 1

    # After an invalidation the herd again computes once (no stale value may be served).
    caches[0].invalidate_by_tag("t")
    results = _race(caches, "metrics:dashboard:u:asset:30d", compute, tags=["t"])
    assert compute.calls == 2
    assert results == [{"call": 2}] * THREADS
    for c in caches:
        c.close()


@pytest.mark.timeout(60)
def test_expired_entry_recomputes_once_and_serves_stale_meanwhile(
    redis_url: str, redis_prefix: str
) -> None:
    cache = MetricsCache.from_url(redis_url, namespace=redis_prefix, stale_grace=30)
    compute = SlowCompute(0.5)
    cache.get_or_compute("k:popular", compute, ttl=60)
    expire_logically(cache.client, cache.entry_key("k:popular"))

    def recompute() -> dict[str, int]:
        """Finishes only once every other caller was served the stale value: callers that
        waited for it instead would leave this loop to its deadline (an error in _race)."""
        deadline = time.monotonic() + 30
        while cache.get_stats()["stale_hits"] < THREADS - 1:
            assert time.monotonic() < deadline, "the other callers waited for the recompute"
            time.sleep(0.01)
        return compute()

    results = _race([cache], "k:popular", recompute, ttl=60)
    assert compute.calls == 2
    assert results.count({"call": 2}) == 1  # the one that recomputed
    assert results.count({"call": 1}) == THREADS - 1  # everybody else got the stale value
    assert cache.get_stats()["stale_hits"] == THREADS - 1
    assert cache.get_or_compute("k:popular", compute, ttl=60) == {"call": 2}
    cache.close()


@pytest.mark.timeout(60)
def test_failing_computer_hands_over_to_a_waiter(redis_url: str, redis_prefix: str) -> None:
    cache = MetricsCache.from_url(redis_url, namespace=redis_prefix)
    calls: list[int] = []
    lock = threading.Lock()

    def flaky() -> str:
        with lock:
            calls.append(1)
            first = len(calls) == 1
        time.sleep(0.2)
        if first:
            raise RuntimeError("first computer fails")
        return "ok"

    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def worker() -> None:
        barrier.wait()
        try:
            outcomes.append(cache.get_or_compute("k:flaky", flaky))
        except RuntimeError:
            outcomes.append("error")

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert outcomes.count("error") == 1
    assert outcomes.count("ok") == THREADS - 1
    assert len(calls) == 2
    cache.close()


def test_an_entry_stored_between_the_miss_and_the_lock_is_served(
    redis_url: str, redis_prefix: str
) -> None:
    """The holder stores and frees the lock right after our miss: taking the lock then must not
    compute a second time (the gap that made a herd compute twice now and then)."""
    holder = MetricsCache.from_url(redis_url, namespace=redis_prefix)

    class Late(MetricsCache):
        def _take_lock(self, plan: Any, token: str) -> bool:
            holder.get_or_compute(plan.key, lambda: {"from": "holder"}, tags=["t"])
            return super()._take_lock(plan, token)

    cache = Late(holder.client, namespace=redis_prefix)
    value = cache.get_or_compute("k:gap", lambda: pytest.fail("computed twice"), tags=["t"])
    assert value == {"from": "holder"}
    assert cache.client.exists(cache.layout.lock("k:gap")) == 0
    assert (cache.get_stats()["hits"], cache.get_stats()["misses"]) == (1, 0)
    holder.close()
