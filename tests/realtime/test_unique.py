"""Unique counts: per-slot HyperLogLogs over a sliding window, checked against Python sets."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.labels import InvalidValueError
from realtime.series import slot_seconds
from tests.realtime.support import free_port, keys_under, redis_time, sleep_until
from tests.realtime.test_prometheus import parse_exposition


def test_hundred_thousand_members_within_two_percent(rt: RealtimeMetrics) -> None:
    rng = random.Random(18)
    members = [f"user-{rng.getrandbits(48):x}" for _ in range(100_000)]
    stream = members + rng.sample(members, 30_000)  # repeats count once
    rng.shuffle(stream)
    for start in range(0, len(stream), 1000):
        with rt.batch() as batch:
            for member in stream[start : start + 1000]:
                batch.track_unique("visitors", member, 600, {"site": "a"})
    expected = len(set(stream))
    estimate = rt.get_unique("visitors", 600, {"site": "a"})
    assert estimate is not None
    assert abs(estimate - expected) / expected <= 0.02
    assert rt.get_unique("visitors", 600, {"site": "b"}) == 0


def test_members_seen_in_several_slots_count_once(rt: RealtimeMetrics, raw: redis.Redis) -> None:
    first = [f"m{i}" for i in range(40)]
    second = [f"m{i}" for i in range(20, 70)] + [7, 8]  # ints count as their text
    for member in first:
        rt.track_unique("sessions", member, 30)
    sleep_until(raw, redis_time(raw) + slot_seconds(30) + 0.05)  # the next slot
    for member in second:
        rt.track_unique("sessions", member, 30)
    expected = len(set(first) | {str(m) for m in second})
    assert rt.get_unique("sessions", 30) == expected
    # Every slot key expires: at most one window after its slot ends.
    for key in keys_under(raw, rt.settings.prefix + "{u:"):
        if not key.endswith(b":m"):
            assert 0 < raw.ttl(key) <= 30 + 2 * slot_seconds(30) + 1


def test_members_leave_with_their_slots(rt: RealtimeMetrics, raw: redis.Redis) -> None:
    for i in range(25):
        rt.track_unique("clicks", f"old{i}", 2)
    assert rt.get_unique("clicks", 2) == 25
    sleep_until(raw, redis_time(raw) + 2 + 2 * slot_seconds(2) + 0.05)
    for i in range(10):
        rt.track_unique("clicks", f"new{i}", 2)
    assert rt.get_unique("clicks", 2) == 10


def test_export_validation_and_fail_open(rt: RealtimeMetrics) -> None:
    for member in ("a", "b", "c", "a"):
        rt.track_unique("app.users", member, 60, {"plan": "pro"})
    families = parse_exposition(rt.export_prometheus())
    assert families["app_users"] == ("gauge", [("app_users", {"plan": "pro", "window": "60"}, 3)])
    for bad in ("", None, 1.5, "x" * 1025):
        with pytest.raises(InvalidValueError):
            rt.track_unique("app.users", bad)  # type: ignore[arg-type]
    down = RealtimeMetrics.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, retry_interval=60
    )
    try:
        down.track_unique("u", "a")
        assert down.stats()["pending"] == 1 and down.get_unique("u") is None
    finally:
        down.close()


def test_async_client(redis_url: str, redis_prefix: str, rt: RealtimeMetrics) -> None:
    async def scenario() -> int | None:
        async with AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as metrics:
            await asyncio.gather(
                *(metrics.track_unique("ips", f"10.0.0.{i % 50}") for i in range(200))
            )
            async with metrics.batch() as batch:
                batch.track_unique("ips", "10.0.1.1")
            return await metrics.get_unique("ips")

    assert asyncio.run(scenario()) == 51
    assert rt.get_unique("ips") == 51
