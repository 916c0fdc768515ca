"""Cardinality limits: past a metric's limit of label sets, writes go to one overflow series
(otel_metric_overflow="true"), shared by every process, counted in stats() and exported."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.labels import InvalidLabelsError
from realtime.persistence import backup_to_warehouse, restore_from_warehouse
from realtime.registry import cleanup
from tests.realtime.support import RedisServer, keys_under
from tests.realtime.test_prometheus import parse_exposition
from warehouse import Warehouse

OVERFLOW = {"otel_metric_overflow": "true"}


def _expected(writes: list[tuple[str, int]], limit: int) -> tuple[dict[str, int], int]:
    """Plain Python: the first `limit` distinct label values keep their series, the rest sum
    into the overflow; returns (per admitted value, overflow total)."""
    admitted: list[str] = []
    own: Counter[str] = Counter()
    overflow = 0
    for value, amount in writes:
        if value in admitted or len(admitted) < limit:
            if value not in admitted:
                admitted.append(value)
            own[value] += amount
        else:
            overflow += amount
    return dict(own), overflow


def test_writes_beyond_the_limit_go_to_the_overflow_series(
    redis_url: str, redis_prefix: str
) -> None:
    writes = [(f"u{i % 9}", i + 1) for i in range(40)]  # 9 label values, limit 5
    own, overflow = _expected(writes, 5)
    with RealtimeMetrics.from_url(
        redis_url, prefix=redis_prefix, fail_open=False, max_label_sets=5
    ) as rt:
        for value, amount in writes:
            rt.increment_counter("logins", amount, {"user": value})
        for value, total in own.items():
            assert rt.get_counter("logins", {"user": value}) == total
        for value in {v for v, _ in writes} - set(own):
            assert rt.get_counter("logins", {"user": value}) == 0
        assert rt.get_counter("logins", OVERFLOW) == overflow
        overflowed_writes = sum(1 for value, _ in writes if value not in own)
        assert rt.stats()["overflowed"] == overflowed_writes

        families = parse_exposition(rt.export_prometheus())
        samples = {tuple(sorted(labels.items())): v for _, labels, v in families["logins"][1]}
        assert samples[(("otel_metric_overflow", "true"),)] == overflow
        assert len(samples) == 6

    # Another process shares the limit: admitted label sets keep their series, new ones overflow.
    with RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, max_label_sets=5) as other:
        first = next(iter(own))
        assert other.increment_counter("logins", 1, {"user": first}) == own[first] + 1
        assert other.increment_counter("logins", 1, {"user": "newcomer"}) == overflow + 1
        assert other.stats()["overflowed"] == 1


def test_the_limit_is_per_metric_and_covers_windows_and_batches(rt: RealtimeMetrics) -> None:
    rt.max_label_sets = 3
    values = [float(i) for i in range(1, 11)]
    for i, value in enumerate(values):
        rt.add_to_histogram("latency", value, 60, {"route": f"/r{i}"})
    rt.add_to_histogram("latency", 100.0, 300, {"route": "/r9"})  # another window, same set
    snap = rt.get_histogram("latency", 60, OVERFLOW)
    assert snap is not None and (snap.count, snap.sum) == (7, sum(values[3:]))
    wide = rt.get_histogram("latency", 300, OVERFLOW)
    assert wide is not None and wide.count == 1
    # Counters named alike have their own limit; a batch is routed write by write.
    with rt.batch() as batch:
        for i in range(5):
            batch.increment_counter("latency_total", 2, {"route": f"/r{i}"})
    assert batch.results == [2, 2, 2, 2, 4]
    assert rt.get_counter("latency_total", OVERFLOW) == 4


def test_default_limit_is_two_thousand(rt: RealtimeMetrics) -> None:
    assert rt.max_label_sets == 2000
    with rt.batch() as batch:
        for i in range(2003):
            batch.track_rate("clicks", 60, {"item": str(i)})
    assert rt.stats()["overflowed"] == 3
    assert rt.get_rate("clicks", 60, OVERFLOW) == pytest.approx(3 / 60)
    assert rt.get_rate("clicks", 60, {"item": "1999"}) == pytest.approx(1 / 60)


def test_the_overflow_label_is_reserved(rt: RealtimeMetrics) -> None:
    with pytest.raises(InvalidLabelsError, match="reserved"):
        rt.increment_counter("x", 1, {"otel_metric_overflow": "true", "a": "b"})
    with pytest.raises(InvalidLabelsError, match="reserved"):
        rt.increment_counter("x", 1, {"otel_metric_overflow": "yes"})


def test_no_limit(redis_url: str, redis_prefix: str) -> None:
    with RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, max_label_sets=None) as rt:
        for i in range(50):
            rt.increment_counter("n", 1, {"i": str(i)})
        assert rt.stats()["overflowed"] == 0 and rt.get_counter("n", OVERFLOW) == 0
    with pytest.raises(ValueError, match="max_label_sets"):
        RealtimeMetrics.from_url(redis_url, max_label_sets=0)


def test_cleanup_frees_the_label_sets_of_gone_series(rt: RealtimeMetrics) -> None:
    rt.max_label_sets = 2
    for page in ("a", "b", "c"):
        rt.increment_counter("views", 1, {"page": page})
    assert rt.get_counter("views", OVERFLOW) == 1
    rt.client.delete(rt.ops.key(rt.ops.series("counter", "views", {"page": "a"})[0]))
    cleanup(rt)
    fresh = RealtimeMetrics(rt.client, prefix=rt.settings.prefix, max_label_sets=2)
    assert fresh.increment_counter("views", 5, {"page": "d"}) == 5  # "a"'s place is free
    assert fresh.increment_counter("views", 1, {"page": "e"}) == 2  # the overflow


def test_writes_buffered_while_down_are_routed_when_replayed(
    redis_server_factory: type[RedisServer],
) -> None:
    server = redis_server_factory()  # not started: Redis is down
    rt = RealtimeMetrics.from_url(
        server.url, max_label_sets=2, socket_connect_timeout=0.5, retry_interval=0.0
    )
    try:
        for i in range(5):
            assert rt.increment_counter("jobs", 10 + i, {"queue": f"q{i}"}) is None
        server.start()
        assert rt.flush_buffer() == 5
        assert [rt.get_counter("jobs", {"queue": f"q{i}"}) for i in range(5)] == [10, 11, 0, 0, 0]
        assert rt.get_counter("jobs", OVERFLOW) == 12 + 13 + 14
        assert rt.stats()["overflowed"] == 3
    finally:
        rt.close()


def test_async_client_routes_too(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> None:
        async with AsyncRealtimeMetrics.from_url(
            redis_url, prefix=redis_prefix, fail_open=False, max_label_sets=1
        ) as rt:
            assert await rt.increment_counter("a", 1, {"k": "1"}) == 1
            assert await rt.increment_counter("a", 2, {"k": "2"}) == 2
            assert await rt.increment_counter("a", 3, {"k": "3"}) == 5
            assert await rt.get_counter("a", OVERFLOW) == 5
            assert rt.stats()["overflowed"] == 2

    asyncio.run(scenario())


def test_the_overflow_series_is_backed_up_and_restored(
    rt: RealtimeMetrics, warehouse: Warehouse
) -> None:
    rt.max_label_sets = 1
    for user, amount in (("a", 2), ("b", 3), ("c", 4)):
        rt.increment_counter("logins", amount, {"user": user})
    backup_to_warehouse(rt, warehouse)
    rt.client.delete(*keys_under(rt.client, rt.settings.prefix))  # what a restart would do
    assert restore_from_warehouse(rt, warehouse) == 2
    assert rt.get_counter("logins", {"user": "a"}) == 2
    assert rt.get_counter("logins", OVERFLOW) == 3 + 4
