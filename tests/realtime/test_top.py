"""Top-k: bounded per-slot Space-Saving summaries over a sliding window, checked against a
plain Python count of the same stream."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
import redis

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.labels import InvalidLabelsError, InvalidValueError
from realtime.series import TOP_CAPACITY, slot_seconds
from tests.realtime.support import free_port, keys_under, redis_time, sleep_until
from tests.realtime.test_prometheus import parse_exposition


def _ranked(counts: Counter[str], k: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:k]


def test_skewed_stream_top_items_are_exact(rt: RealtimeMetrics, raw: redis.Redis) -> None:
    rng = random.Random(18)
    stream = [f"/page/{i}" for i in range(1, 21) for _ in range(3000 // i)]
    stream += [f"/tail/{j}" for j in range(3000)]  # many more items than a slot keeps
    rng.shuffle(stream)
    for start in range(0, len(stream), 500):
        with rt.batch() as batch:
            for item in stream[start : start + 500]:
                batch.track_top("views", item, 300, {"site": "a"})
    counts = Counter(stream)
    assert rt.get_top("views", 20, 300, {"site": "a"}) == _ranked(counts, 20)
    assert rt.get_top("views", 3, 300, {"site": "a"}) == _ranked(counts, 3)
    assert rt.get_top("views", 5, 300, {"site": "b"}) == []
    # Memory stays bounded: no slot holds more than TOP_CAPACITY items.
    slots = [k for k in keys_under(raw, rt.settings.prefix + "{t:") if not k.endswith(b":m")]
    assert slots and all(raw.zcard(key) <= TOP_CAPACITY for key in slots)
    assert all(0 < raw.ttl(key) <= 300 + 2 * slot_seconds(300) + 1 for key in slots)


def test_few_items_are_exact_and_slots_add_up(rt: RealtimeMetrics, raw: redis.Redis) -> None:
    first = ["a"] * 5 + ["b"] * 3 + ["c"]
    second = ["b"] * 4 + ["d"] * 2
    for item in first:
        rt.track_top("errors", item, 30)
    sleep_until(raw, redis_time(raw) + slot_seconds(30) + 0.05)  # the next slot
    for item in second:
        rt.track_top("errors", item, 30)
    assert rt.get_top("errors", 10, 30) == _ranked(Counter(first + second), 10)


def test_items_leave_with_their_slots(rt: RealtimeMetrics, raw: redis.Redis) -> None:
    for item in ["old"] * 9:
        rt.track_top("hot", item, 2)
    sleep_until(raw, redis_time(raw) + 2 + 2 * slot_seconds(2) + 0.05)
    rt.track_top("hot", "new", 2)
    assert rt.get_top("hot", 5, 2) == [("new", 1)]


def test_export_validation_and_fail_open(rt: RealtimeMetrics) -> None:
    items = [f"/p{i}" for i in range(12) for _ in range(i + 1)]
    for item in items:
        rt.track_top("page.views", item, 60, {"site": "x"})
    families = parse_exposition(rt.export_prometheus())
    kind, samples = families["page_views"]
    assert kind == "gauge"
    top10 = _ranked(Counter(items), 10)
    assert samples == [
        ("page_views", {"site": "x", "item": item, "window": "60"}, n) for item, n in top10
    ]
    for k in (0, 101, 2.0):
        with pytest.raises(InvalidValueError):
            rt.get_top("page.views", k, 60)  # type: ignore[arg-type]
    for bad in ("", 5, "x" * 129, "a\nb"):
        with pytest.raises(InvalidValueError):
            rt.track_top("page.views", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidLabelsError, match="reserved"):
        rt.track_top("page.views", "/p", 60, {"item": "x"})
    down = RealtimeMetrics.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, retry_interval=60
    )
    try:
        down.track_top("t", "a")
        assert down.stats()["pending"] == 1 and down.get_top("t", 3) is None
    finally:
        down.close()


def test_async_client(redis_url: str, redis_prefix: str, rt: RealtimeMetrics) -> None:
    items = [f"q{i % 7}" for i in range(100)] + ["q0"] * 3

    async def scenario() -> list[tuple[str, int]] | None:
        async with AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as metrics:
            await asyncio.gather(*(metrics.track_top("queries", item) for item in items))
            return await metrics.get_top("queries", 4)

    assert asyncio.run(scenario()) == _ranked(Counter(items), 4)
    assert rt.get_top("queries", 4) == _ranked(Counter(items), 4)
