"""The series registry (no KEYS) and cleanup of expired series."""

from __future__ import annotations

import pytest
import redis

from realtime.metrics import RealtimeMetrics
from realtime.names import NameCollisionError
from realtime.registry import cleanup
from realtime.series import KINDS, registry_key


def _members(rt: RealtimeMetrics, kind: str) -> set[str]:
    return {series.member for series, _ in rt.series_of(kind)}  # type: ignore[arg-type]


def test_series_register_themselves(rt: RealtimeMetrics) -> None:
    rt.increment_counter("hits", 1, {"b": "2", "a": "1"})
    rt.set_gauge("depth", 1)
    rt.add_to_histogram("latency", 1.0, 30)
    rt.track_rate("rps", 10, {"x": "y"})
    assert _members(rt, "counter") == {"hits|a=1,b=2"}
    assert _members(rt, "gauge") == {"depth|"}
    assert _members(rt, "histogram") == {"latency||30"}
    assert _members(rt, "rate") == {"rps|x=y|10"}


def test_cleanup_removes_only_expired_series(rt: RealtimeMetrics, raw: redis.Redis) -> None:
    # One name per kind: two kinds under one name would export the same Prometheus sample.
    for name in ("alive", "expired"):
        rt.increment_counter(f"c_{name}")
        rt.set_gauge(f"g_{name}", 1)
        rt.add_to_histogram(f"h_{name}", 1.0, 30)
        rt.track_rate(f"r_{name}", 30)
        rt.track_unique(f"u_{name}", "member", 30)
        rt.track_top(f"t_{name}", "item", 30)
    # Simulate expiry: the counter and gauge keys are gone; the window series were last
    # registered long ago (their slots have expired since).
    for kind in ("counter", "gauge"):
        raw.delete(rt.ops.key(rt.ops.series(kind, f"{kind[0]}_expired", None)[0]))
    windowed = ("histogram", "rate", "unique", "top")
    for kind in windowed:
        key = registry_key(rt.settings.prefix, kind)
        raw.zadd(key, {f"{kind[0]}_expired||30": 1_000_000})  # type: ignore[arg-type]

    removed = cleanup(rt)

    assert removed == dict.fromkeys(KINDS, 1)
    for kind in ("counter", "gauge"):
        assert _members(rt, kind) == {f"{kind[0]}_alive|"}
    for kind in windowed:
        assert _members(rt, kind) == {f"{kind[0]}_alive||30"}
    assert cleanup(rt) == dict.fromkeys(KINDS, 0)


def test_cleanup_releases_the_names_of_metrics_that_are_gone(
    rt: RealtimeMetrics, raw: redis.Redis, redis_url: str, redis_prefix: str
) -> None:
    rt.increment_counter("lat_count")
    rt.set_gauge("kept", 1)
    raw.delete(rt.ops.key(rt.ops.series("counter", "lat_count", None)[0]))  # expired
    cleanup(rt)
    with RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, fail_open=False) as other:
        other.add_to_histogram("lat", 1.0, 60)  # lat_count is free again
        with pytest.raises(NameCollisionError):
            other.increment_counter("kept")  # still the gauge's
