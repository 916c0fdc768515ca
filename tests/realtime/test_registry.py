"""The series registry (no KEYS) and cleanup of expired series."""

from __future__ import annotations

import redis

from realtime.metrics import RealtimeMetrics
from realtime.registry import cleanup
from realtime.series import registry_key


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
    for name in ("alive", "expired"):
        rt.increment_counter(name)
        rt.set_gauge(name, 1)
        rt.add_to_histogram(name, 1.0, 30)
        rt.track_rate(name, 30)
    # Simulate expiry: the counter and gauge keys are gone; the window series were last
    # registered long ago (their slots have expired since).
    for kind in ("counter", "gauge"):
        raw.delete(rt.ops.key(rt.ops.series(kind, "expired", None)[0]))
    for kind in ("histogram", "rate"):
        raw.zadd(registry_key(rt.settings.prefix, kind), {"expired||30": 1_000_000})  # type: ignore[arg-type]

    removed = cleanup(rt)

    assert removed == {"counter": 1, "gauge": 1, "histogram": 1, "rate": 1}
    for kind in ("counter", "gauge"):
        assert _members(rt, kind) == {"alive|"}
    for kind in ("histogram", "rate"):
        assert _members(rt, kind) == {"alive||30"}
    assert cleanup(rt) == {"counter": 0, "gauge": 0, "histogram": 0, "rate": 0}
