"""The batch API: many writes, one round trip, per-write results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from realtime.metrics import RealtimeMetrics
from tests.realtime.support import CountingConnection, RedisServer


@pytest.fixture()
def counted(redis_url: str, redis_prefix: str) -> Iterator[RealtimeMetrics]:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    metrics = RealtimeMetrics(redis.Redis(connection_pool=pool), prefix=redis_prefix)
    yield metrics
    metrics.close()


def _write_everything(metrics: RealtimeMetrics, rounds: int) -> list[Any]:
    with metrics.batch() as batch:
        for i in range(rounds):
            labels = {"route": f"/r{i % 7}"}
            batch.increment_counter("hits", 1, labels)
            batch.set_gauge("depth", i, labels)
            batch.add_to_histogram("latency", 1.5 + i, 60, labels)
            batch.track_rate("rps", 60, labels)
    return batch.results


def test_batch_is_one_round_trip(counted: RealtimeMetrics) -> None:
    _write_everything(counted, 70)  # loads the scripts, registers the series
    hour = int(counted.client.time()[0]) // 3600
    CountingConnection.sends = 0
    results = _write_everything(counted, 70)  # 280 writes, 3 batch.lua calls
    sends = CountingConnection.sends
    if int(counted.client.time()[0]) // 3600 != hour:
        pytest.skip("an hour boundary passed: counters re-registered (one more round trip)")
    assert sends == 1
    assert len(results) == 280


def test_single_write_is_one_round_trip(counted: RealtimeMetrics) -> None:
    counted.track_rate("rps", 60)
    counted.add_to_histogram("lat", 2.0, 60)
    CountingConnection.sends = 0
    counted.track_rate("rps", 60)
    counted.add_to_histogram("lat", 3.0, 60)
    counted.set_gauge("g", 1)
    # The gauge's first write also claims its exported name (once per process) and registers it.
    assert CountingConnection.sends == 3 + 2


def test_a_batch_call_reads_redis_time_once(private_redis: RedisServer) -> None:
    """batch.lua reads Redis TIME once for all its writes (it read it once per counter,
    histogram and rate write): one command instead of 75 here, all in one slot and hour."""
    metrics = RealtimeMetrics.from_url(private_redis.url, fail_open=False)
    inspect = redis.Redis.from_url(private_redis.url)
    _write_everything(metrics, 25)  # loads the scripts, claims the names, registers
    inspect.config_resetstat()
    assert len(_write_everything(metrics, 25)) == 100  # one batch.lua call
    stats = inspect.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1
    assert stats["cmdstat_time"]["calls"] == 1
    assert metrics.get_counter("hits", {"route": "/r3"}) == 8  # i = 3, 10, 17, 24, twice
    inspect.close()
    metrics.close()


def test_batch_results_and_values(rt: RealtimeMetrics) -> None:
    rt.increment_counter("hits", 10, {"route": "/r0"})
    results = _write_everything(rt, 14)
    counter_totals = results[0::4]
    assert counter_totals[0] == 11  # /r0 after the earlier 10
    assert counter_totals[7] == 12  # /r0 again
    assert all(result is None for result in results[1::4])
    assert rt.get_counter("hits", {"route": "/r3"}) == 2
    assert rt.get_gauge("depth", {"route": "/r6"}) == 13
    snap = rt.get_histogram("latency", 60, {"route": "/r1"})
    assert snap is not None and (snap.count, snap.min, snap.max) == (2, 2.5, 9.5)
    assert rt.get_rate("rps", 60, {"route": "/r2"}) == pytest.approx(2 / 60)


def test_a_failing_write_does_not_stop_the_others(rt: RealtimeMetrics, raw: redis.Redis) -> None:
    raw.set(rt.ops.key(rt.ops.series("counter", "broken", None)[0]), "not a number")
    with pytest.raises(redis.ResponseError), rt.batch() as batch:
        batch.increment_counter("broken")
        batch.increment_counter("fine")
    assert batch.results == [None, 1]
    assert rt.get_counter("fine") == 1


def test_nothing_is_sent_when_the_block_raises(rt: RealtimeMetrics) -> None:
    with pytest.raises(RuntimeError), rt.batch() as batch:
        batch.increment_counter("never")
        raise RuntimeError("boom")
    assert rt.get_counter("never") == 0


def test_empty_batch(rt: RealtimeMetrics) -> None:
    with rt.batch() as batch:
        pass
    assert batch.results == []
