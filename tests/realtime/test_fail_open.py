"""Redis unreachable: fail open buffers and replays writes; fail closed raises."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
import redis
from redis.exceptions import RedisClusterException, SlotNotCoveredError

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.availability import unavailable
from tests.realtime.support import RedisServer, free_port

FAST = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "retry_interval": 0.0}


def test_writes_do_not_raise_and_are_buffered_when_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = RealtimeMetrics.from_url(f"redis://127.0.0.1:{free_port()}/0", **FAST)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="realtime"):
        assert metrics.increment_counter("hits") is None
        metrics.set_gauge("depth", 3)
        metrics.add_to_histogram("latency", 12.0)
        metrics.track_rate("rps")
        with metrics.batch() as batch:
            batch.increment_counter("hits", 2)
            batch.track_rate("rps")
    assert batch.results == [None, None]
    stats = metrics.stats()
    assert stats["buffered"] == stats["pending"] == 6
    assert stats["dropped"] == 0 and stats["write_errors"] >= 1
    assert "buffered" in caplog.text
    # Reads under fail open answer "unknown", not a misleading zero.
    assert metrics.get_counter("hits") is None
    assert metrics.get_gauge("depth") is None
    assert metrics.get_histogram("latency") is None
    assert metrics.get_rate("rps") is None
    assert metrics.stats()["read_errors"] == 4
    metrics.close()


def test_buffer_is_bounded_and_overflow_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = RealtimeMetrics.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        buffer_size=5,
        **FAST,  # type: ignore[arg-type]
    )
    with caplog.at_level(logging.WARNING, logger="realtime"):
        for _ in range(8):
            metrics.increment_counter("hits")
    stats = metrics.stats()
    assert (stats["buffered"], stats["pending"], stats["dropped"]) == (8, 5, 3)
    assert "dropped" in caplog.text
    metrics.close()


def test_buffered_writes_are_replayed_when_redis_comes_back(
    redis_server_factory: type[RedisServer],
) -> None:
    server = redis_server_factory()  # not started yet: the port is closed
    metrics = RealtimeMetrics.from_url(server.url, **FAST)  # type: ignore[arg-type]
    for _ in range(5):
        assert metrics.increment_counter("hits", 1, {"page": "home"}) is None
    metrics.set_gauge("depth", 1)
    metrics.set_gauge("depth", 7)  # order is kept: the last value wins after replay
    metrics.add_to_histogram("latency", 42.0, 60)
    metrics.track_rate("rps", 60, count=6)
    assert metrics.stats()["pending"] == 9

    server.start()
    # The next write replays the buffer first, then runs: the total includes the replay.
    assert metrics.increment_counter("hits", 1, {"page": "home"}) == 6
    assert metrics.stats()["pending"] == 0 and metrics.stats()["replayed"] == 9
    assert metrics.get_gauge("depth") == 7
    snap = metrics.get_histogram("latency", 60)
    assert snap is not None and snap.count == 1 and snap.max == 42.0
    assert metrics.get_rate("rps", 60) == pytest.approx(6 / 60)

    # Down again mid-life: buffered; back again: an explicit flush replays.
    server.stop()
    metrics.increment_counter("hits", 4, {"page": "home"})
    assert metrics.stats()["pending"] == 1
    server.start()  # a fresh, empty Redis: only what was buffered arrives
    assert metrics.flush_buffer() == 1
    assert metrics.get_counter("hits", {"page": "home"}) == 4
    metrics.close()


def test_reconnects_after_a_redis_restart_without_losing_writes(
    private_redis: RedisServer,
) -> None:
    metrics = RealtimeMetrics.from_url(private_redis.url, **FAST)  # type: ignore[arg-type]
    assert metrics.increment_counter("hits") == 1
    private_redis.restart()  # pooled connections are now dead; scripts are gone
    total = metrics.increment_counter("hits")
    if total is None:  # buffered on the dead connection; replayed with the next write
        total = metrics.increment_counter("hits")
        assert total == 2
    else:
        assert total == 1  # the retry reconnected and re-loaded the script (NOSCRIPT)
    assert metrics.stats()["pending"] == 0
    metrics.close()


def test_retry_interval_skips_redis_while_it_is_known_down() -> None:
    metrics = RealtimeMetrics.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        socket_connect_timeout=0.5,
        retry_interval=60.0,
    )
    metrics.increment_counter("hits")
    assert metrics.write_errors == 1
    for _ in range(50):  # no connection attempt for 60 s: buffered directly
        metrics.increment_counter("hits")
    assert metrics.write_errors == 1 and metrics.stats()["pending"] == 51
    metrics.close()


def test_fail_closed_raises() -> None:
    metrics = RealtimeMetrics.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        fail_open=False,
        **FAST,  # type: ignore[arg-type]
    )
    with pytest.raises(redis.ConnectionError):
        metrics.increment_counter("hits")
    with pytest.raises(redis.ConnectionError):
        metrics.get_counter("hits")
    with pytest.raises(redis.ConnectionError), metrics.batch() as batch:
        batch.track_rate("rps")
    assert metrics.stats()["buffered"] == 0
    metrics.close()


def test_async_fails_open_and_replays(redis_server_factory: type[RedisServer]) -> None:
    server = redis_server_factory()

    async def scenario() -> None:
        metrics = AsyncRealtimeMetrics.from_url(server.url, **FAST)  # type: ignore[arg-type]
        assert await metrics.increment_counter("hits", 2) is None
        async with metrics.batch() as batch:
            batch.increment_counter("hits", 3)
        assert await metrics.get_counter("hits") is None
        assert metrics.stats()["pending"] == 2
        server.start()
        assert await metrics.flush_buffer() == 2
        assert await metrics.get_counter("hits") == 5
        await metrics.aclose()

    asyncio.run(scenario())


def test_async_fail_closed_raises() -> None:
    async def scenario() -> None:
        metrics = AsyncRealtimeMetrics.from_url(
            f"redis://127.0.0.1:{free_port()}/0",
            fail_open=False,
            **FAST,  # type: ignore[arg-type]
        )
        with pytest.raises(redis.ConnectionError):
            await metrics.increment_counter("hits")
        await metrics.aclose()

    asyncio.run(scenario())


def test_pools_stay_whole_across_outages(redis_server_factory: type[RedisServer]) -> None:
    """Five outages with writes going on (4 threads on the blocking client, 4 tasks on the
    asyncio one) and 2 connections per pool: a connection lost to each failed send would
    leave none by the third outage. After each restart the buffered writes land, exactly."""
    server = redis_server_factory().start()
    options = {**FAST, "max_connections": 2, "pool_timeout": 0.5, "prefix": "outages:"}
    blocking = RealtimeMetrics.from_url(server.url, **options)  # type: ignore[arg-type]

    def write(count: int) -> None:
        for _ in range(count):
            blocking.increment_counter("sync")

    async def scenario() -> list[tuple[int | float | None, int | float | None]]:
        asynchronous = AsyncRealtimeMetrics.from_url(server.url, **options)  # type: ignore[arg-type]
        totals = []
        try:
            for _ in range(5):
                server.stop()  # with connections open: the next sends fail
                threads = [threading.Thread(target=write, args=(10,)) for _ in range(4)]
                for thread in threads:
                    thread.start()
                await asyncio.gather(*(asynchronous.increment_counter("async") for _ in range(40)))
                for thread in threads:
                    thread.join()
                server.start()  # empty again
                blocking.flush_buffer()
                await asynchronous.flush_buffer()
                write(1)
                await asynchronous.increment_counter("async")
                total = await asynchronous.get_counter("async")
                totals.append((blocking.get_counter("sync"), total))
            return totals
        finally:
            await asynchronous.aclose()

    try:
        assert asyncio.run(scenario()) == [(41, 41)] * 5
        assert blocking.stats()["pending"] == 0
    finally:
        blocking.close()


def test_what_counts_as_redis_unavailable() -> None:
    """realtime.availability.unavailable, the one classification both clients use: an
    unreachable Redis (or whole cluster, which redis-py raises as a RedisClusterException
    caused by the connection error) is an outage; a command error or a cluster client's usage
    error is a bug."""
    refused = redis.ConnectionError("Connection refused")
    whole_cluster = RedisClusterException("Redis Cluster cannot be connected")
    whole_cluster.__cause__ = refused
    not_a_cluster = RedisClusterException("Redis Cluster cannot be connected")
    not_a_cluster.__cause__ = RedisClusterException("Cluster mode is not enabled on this node")
    assert unavailable(refused) and unavailable(redis.TimeoutError())
    assert unavailable(whole_cluster) and unavailable(SlotNotCoveredError("slot 7"))
    assert not unavailable(redis.ResponseError("WRONGTYPE"))
    assert not unavailable(not_a_cluster) and not unavailable(RedisClusterException("usage"))


def test_a_cluster_usage_error_raises_under_fail_open(redis_url: str) -> None:
    """cluster=True on a Redis that is no cluster is a mistake, not an outage: the write
    raises redis-py's RedisClusterException instead of being buffered."""

    async def scenario() -> None:
        metrics = AsyncRealtimeMetrics.from_url(redis_url, cluster=True, **FAST)  # type: ignore[arg-type]
        with pytest.raises(RedisClusterException, match="Cluster mode is not enabled"):
            await metrics.increment_counter("hits")
        assert metrics.stats()["buffered"] == 0
        await metrics.aclose()

    asyncio.run(scenario())
