"""Counters, gauges, histograms and rates on the shared Redis: values, windows, TTLs, labels."""

from __future__ import annotations

import math
import multiprocessing
import random

import pytest
import redis

from realtime.labels import InvalidLabelsError, InvalidMetricNameError, InvalidValueError
from realtime.metrics import RealtimeMetrics
from realtime.sketch import RELATIVE_ACCURACY, nearest_rank
from tests.realtime.support import RedisServer, keys_under, redis_time, sleep_until

PROCESSES = 4
INCREMENTS = 300


def _increment_many(url: str, prefix: str, count: int) -> None:
    """Child process: its own client, `count` increments of one shared counter."""
    metrics = RealtimeMetrics.from_url(url, prefix=prefix, fail_open=False)
    for _ in range(count):
        metrics.increment_counter("concurrent_hits", 1, {"page": "home"})
    metrics.close()


def test_counter_returns_new_totals_and_reads_back(rt: RealtimeMetrics) -> None:
    assert rt.get_counter("page_views") == 0
    assert rt.increment_counter("page_views") == 1
    assert rt.increment_counter("page_views", 41) == 42
    assert rt.get_counter("page_views") == 42
    assert rt.increment_counter("page_views", 0.5) == 42.5
    assert rt.increment_counter("page_views", 2) == 44.5  # integer add after a float one
    assert rt.get_counter("page_views") == 44.5


def test_counter_is_exact_under_concurrent_processes(
    rt: RealtimeMetrics, redis_url: str, redis_prefix: str
) -> None:
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_increment_many, args=(redis_url, redis_prefix, INCREMENTS))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert rt.get_counter("concurrent_hits", {"page": "home"}) == PROCESSES * INCREMENTS


def test_labels_are_order_insensitive_and_separate_series(rt: RealtimeMetrics) -> None:
    rt.increment_counter("requests", 1, {"method": "GET", "route": "/a"})
    rt.increment_counter("requests", 1, {"route": "/a", "method": "GET"})
    rt.increment_counter("requests", 1, {"route": "/b", "method": "GET"})
    assert rt.get_counter("requests", {"route": "/a", "method": "GET"}) == 2
    assert rt.get_counter("requests", {"method": "GET", "route": "/b"}) == 1
    assert rt.get_counter("requests") == 0


def test_invalid_input_raises_before_touching_redis(rt: RealtimeMetrics) -> None:
    with pytest.raises(InvalidLabelsError):
        rt.increment_counter("requests", 1, {"bad key": "x"})
    with pytest.raises(InvalidLabelsError):
        rt.set_gauge("temperature", 1, {"k": "v" * 500})
    with pytest.raises(InvalidMetricNameError):
        rt.track_rate("has-dash")
    with pytest.raises(InvalidValueError):
        rt.add_to_histogram("latency", float("nan"))
    with pytest.raises(InvalidValueError):
        rt.track_rate("events", count=0)
    with pytest.raises(InvalidValueError):
        rt.get_histogram("latency", window_seconds=0)
    with pytest.raises(ValueError):  # every validation error is a ValueError
        rt.increment_counter("requests", 1, {"k": 3})  # type: ignore[dict-item]


def test_gauge_value_and_unit(rt: RealtimeMetrics) -> None:
    assert rt.get_gauge("queue_depth") is None
    rt.set_gauge("queue_depth", 17, {"queue": "emails"}, unit="jobs")
    rt.set_gauge("queue_depth", 12.5, {"queue": "emails"})
    assert rt.get_gauge("queue_depth", {"queue": "emails"}) == 12.5
    assert "unit: jobs" in rt.export_prometheus()


def test_histogram_stats_exact_and_percentiles_within_one_percent(rt: RealtimeMetrics) -> None:
    rng = random.Random(11)
    values = [rng.lognormvariate(3, 1.2) for _ in range(6000)]
    values += [rng.paretovariate(1.5) * 10 for _ in range(6000)]  # heavy tail
    values += [0.0, 0.0004]
    with rt.batch() as batch:
        for value in values:
            batch.add_to_histogram("latency_ms", value, 120, {"route": "/api"})
    snap = rt.get_histogram("latency_ms", 120, {"route": "/api"})
    assert snap is not None
    ordered = sorted(values)
    assert snap.count == len(values)
    assert snap.min == ordered[0] and snap.max == ordered[-1]
    assert math.isclose(snap.sum, math.fsum(values), rel_tol=1e-9)
    assert snap.mean is not None and math.isclose(snap.mean, snap.sum / snap.count)
    for q in (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9):
        exact = ordered[nearest_rank(q, len(ordered)) - 1]
        estimate = snap.percentile(q)
        assert estimate is not None
        assert abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) * (1 + 1e-9), q
    assert (snap.p50, snap.p90, snap.p95, snap.p99) == tuple(
        snap.percentile(q) for q in (50, 90, 95, 99)
    )
    assert snap.percentile(0) == ordered[0] and snap.percentile(100) == ordered[-1]


def test_histogram_handles_negative_values(rt: RealtimeMetrics) -> None:
    for value in (-5.0, -1.0, 0.0, 2.0, 3.0):
        rt.add_to_histogram("delta", value, 60)
    snap = rt.get_histogram("delta", 60)
    assert snap is not None
    assert (snap.count, snap.min, snap.max, snap.sum) == (5, -5.0, 3.0, -1.0)
    assert snap.p50 == 0.0
    assert snap.percentile(20) is not None and abs(snap.percentile(20) + 5.0) <= 0.05  # type: ignore[operator]


def test_empty_histogram_and_rate(rt: RealtimeMetrics) -> None:
    snap = rt.get_histogram("never_written", 60)
    assert snap is not None and snap.count == 0 and snap.p99 is None and snap.min is None
    assert rt.get_rate("never_written", 60) == 0.0


def test_rate_counts_events_per_second_over_the_window(rt: RealtimeMetrics) -> None:
    for _ in range(12):
        rt.track_rate("requests", 60)
    rt.track_rate("requests", 60, count=18)
    # All 30 events are in the newest slots, so the whole window counts them: 30 / 60 s.
    assert rt.get_rate("requests", 60) == pytest.approx(0.5)


WINDOW = 3  # seconds: slots of one second


def _write_sliding(rt: RealtimeMetrics, name: str, values: tuple[float, ...]) -> None:
    """One histogram value and one rate event per value."""
    for value in values:
        rt.add_to_histogram(name, value, WINDOW)
        rt.track_rate(name, WINDOW)


def _slide_and_expire(rt: RealtimeMetrics, raw: redis.Redis, redis_prefix: str, name: str) -> bool:
    """One pass of the test below on the series `name`: True when every check was made (and
    held), False when the machine was too slow for a phase to happen in the second it had."""
    first_slot = math.floor(redis_time(raw)) + 1
    sleep_until(raw, first_slot)  # the first writes start a slot...
    _write_sliding(rt, name, (1.0, 2.0, 3.0))
    if math.floor(redis_time(raw)) != first_slot:
        return False  # ...and must all land in it
    sleep_until(raw, first_slot + 1)  # the second writes go to a later slot
    second_start = redis_time(raw)
    _write_sliding(rt, name, (10.0, 20.0))
    second = redis_time(raw)
    both = rt.get_histogram(name, WINDOW)
    rate = rt.get_rate(name, WINDOW)
    if redis_time(raw) > first_slot + WINDOW:
        return False  # the first slot had begun to leave the window: the rate weighs it less
    assert both is not None and both.count == 5 and both.max == 20.0
    assert rate == pytest.approx(5 / WINDOW)

    sleep_until(raw, first_slot + WINDOW + 1)  # the first writes have left the window...
    later = rt.get_histogram(name, WINDOW)
    rate = rt.get_rate(name, WINDOW)
    if redis_time(raw) >= math.floor(second_start) + WINDOW + 1:
        return False  # ...and the second had left it too by the time of the reads
    assert later is not None and (later.count, later.min, later.max) == (2, 10.0, 20.0)
    assert rate is not None and 0 < rate <= 2 / WINDOW + 1e-9

    sleep_until(raw, second + WINDOW + 1.2)  # everything has left the window
    gone = rt.get_histogram(name, WINDOW)
    assert gone is not None and gone.count == 0
    assert rt.get_rate(name, WINDOW) == 0.0
    slot_keys = [k for k in keys_under(raw, redis_prefix) if k.split(b":")[-1].isdigit()]
    assert all(int(k.split(b":")[-1]) > first_slot for k in slot_keys), "first slots expired"
    return True


def test_windows_slide_and_expire(rt: RealtimeMetrics, raw: redis.Redis, redis_prefix: str) -> None:
    """Window 3 s, slots of 1 s: data is read while its slot overlaps (now-3, now] and its
    slot keys expire one window after the slot ends. Each phase waits for its slot on Redis'
    clock; a pass the machine was too slow for proves nothing and runs again on a new series
    (sleeps counted from before the first writes left them 0.1-0.2 s under load)."""
    attempts = 5
    for attempt in range(attempts):
        if _slide_and_expire(rt, raw, redis_prefix, f"sliding{attempt}"):
            return
    pytest.fail(f"all {attempts} passes were too slow to read the window at the right moment")


def test_every_key_has_a_ttl(rt: RealtimeMetrics, raw: redis.Redis, redis_prefix: str) -> None:
    labels = {"env": "test"}
    rt.increment_counter("c", 3, labels)
    rt.set_gauge("g", 1.5, labels, unit="s")
    rt.add_to_histogram("h", 12.0, 30, labels)
    rt.track_rate("r", 30, labels)
    with rt.batch() as batch:
        batch.increment_counter("c2", 1)
        batch.add_to_histogram("h2", 1.0, 5)
        batch.track_rate("r2", 5)
        batch.set_gauge("g2", 2)
    keys = keys_under(raw, redis_prefix)
    assert len(keys) >= 12  # series keys, slots, hour buckets, markers, registries
    ttls = {key: raw.ttl(key) for key in keys}
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    slot_ttls = [ttl for key, ttl in ttls.items() if key.split(b":")[-1].isdigit()]
    assert slot_ttls and max(slot_ttls) <= 30 + 1 + 2  # window + slot + margin


def test_keys_of_one_series_share_a_hash_tag(
    rt: RealtimeMetrics, raw: redis.Redis, redis_prefix: str
) -> None:
    rt.increment_counter("tagged", 1, {"a": "1"})
    rt.add_to_histogram("tagged_ms", 1.0, 10, {"a": "1"})
    series_keys = [
        k for k in keys_under(raw, redis_prefix) if b"registry" not in k and b"{names}" not in k
    ]
    tags = {key[key.index(b"{") : key.index(b"}") + 1] for key in series_keys}
    assert tags == {b"{c:tagged|a=1}", b"{h:tagged_ms|a=1}"}


def test_writes_load_their_scripts_when_redis_has_lost_them(private_redis: RedisServer) -> None:
    """A single write whose script Redis does not hold (SCRIPT FLUSH, a restart) loads it and
    is sent again: applied once, the sketch bucket of a histogram value included."""
    metrics = RealtimeMetrics.from_url(private_redis.url, fail_open=False)
    inspect = redis.Redis.from_url(private_redis.url)
    for attempt in range(2):
        inspect.script_flush()
        assert metrics.increment_counter("hits", 2) == 2 * (attempt + 1)
        assert metrics.set_gauge("depth", 7 + attempt) is None
        assert metrics.add_to_histogram("latency", 1.5 + attempt, 60) is None
        assert metrics.track_rate("rps", 60, count=3) is None
    assert metrics.get_gauge("depth") == 8
    snap = metrics.get_histogram("latency", 60)
    assert snap is not None
    assert (snap.count, snap.sum, snap.min, snap.max) == (2, 4.0, 1.5, 2.5)
    assert snap.percentile(100) == pytest.approx(2.5, rel=RELATIVE_ACCURACY)
    assert metrics.get_rate("rps", 60) == pytest.approx(6 / 60)
    inspect.close()
    metrics.close()
