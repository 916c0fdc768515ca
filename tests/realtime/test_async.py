"""AsyncRealtimeMetrics: the same methods as coroutines, same scripts and key layout."""

from __future__ import annotations

import asyncio

import pytest

from realtime import AsyncRealtimeMetrics, RealtimeMetrics


def test_async_twin_writes_what_the_sync_client_reads(
    redis_url: str, redis_prefix: str, rt: RealtimeMetrics
) -> None:
    async def scenario() -> None:
        async with AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as metrics:
            assert await metrics.increment_counter("hits", 2, {"b": "2", "a": "1"}) == 2
            assert await metrics.increment_counter("hits", 1, {"a": "1", "b": "2"}) == 3
            await metrics.set_gauge("depth", 4.5, unit="jobs")
            for value in (10.0, 20.0, 30.0):
                await metrics.add_to_histogram("latency", value, 60)
            await metrics.track_rate("rps", 60, count=12)
            async with metrics.batch() as batch:
                batch.increment_counter("hits", 7, {"a": "1", "b": "2"})
                batch.add_to_histogram("latency", 40.0, 60)
            assert batch.results == [10, None]
            assert await metrics.get_counter("hits", {"a": "1", "b": "2"}) == 10
            assert await metrics.get_gauge("depth") == 4.5
            snap = await metrics.get_histogram("latency", 60)
            assert snap is not None and (snap.count, snap.min, snap.max) == (4, 10.0, 40.0)
            assert await metrics.get_rate("rps", 60) == pytest.approx(12 / 60)
            page = await metrics.export_prometheus()
            assert 'hits{a="1",b="2"} 10' in page

    asyncio.run(scenario())
    # The synchronous client sees the same series: same keys, same scripts.
    assert rt.get_counter("hits", {"b": "2", "a": "1"}) == 10
    snap = rt.get_histogram("latency", 60)
    assert snap is not None and snap.count == 4 and snap.p50 == pytest.approx(20.0, rel=0.01)
    assert rt.get_gauge("depth") == 4.5
    assert rt.settings.script_source("batch") == rt.settings.script_source("batch")


def test_async_concurrent_increments_are_exact(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> int | float | None:
        async with AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as metrics:
            await asyncio.gather(*(metrics.increment_counter("hits") for _ in range(200)))
            return await metrics.get_counter("hits")

    assert asyncio.run(scenario()) == 200
