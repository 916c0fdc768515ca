"""Metrics whose Prometheus samples would share a name are refused when the second is first
written, with a clear error; the first keeps working and the page stays valid."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from realtime import RealtimeMetrics
from realtime.names import NameCollisionError

Write = Callable[[RealtimeMetrics], object]
COUNTER_LAT_COUNT: Write = lambda rt: rt.increment_counter("lat_count")  # noqa: E731
HISTOGRAM_LAT: Write = lambda rt: rt.add_to_histogram("lat", 1.0, 60)  # noqa: E731
GAUGE_REQ_PER_SECOND: Write = lambda rt: rt.set_gauge("req_per_second", 3)  # noqa: E731
RATE_REQ: Write = lambda rt: rt.track_rate("req", 60)  # noqa: E731
COUNTER_X: Write = lambda rt: rt.increment_counter("x")  # noqa: E731
GAUGE_X: Write = lambda rt: rt.set_gauge("x", 1)  # noqa: E731

PAIRS = {
    "counter lat_count, then histogram lat": (COUNTER_LAT_COUNT, HISTOGRAM_LAT),
    "histogram lat, then counter lat_count": (HISTOGRAM_LAT, COUNTER_LAT_COUNT),
    "gauge req_per_second, then rate req": (GAUGE_REQ_PER_SECOND, RATE_REQ),
    "rate req, then gauge req_per_second": (RATE_REQ, GAUGE_REQ_PER_SECOND),
    "counter x, then gauge x": (COUNTER_X, GAUGE_X),
}


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_the_second_metric_is_refused(rt: RealtimeMetrics, pair: str) -> None:
    first, second = PAIRS[pair]
    first(rt)
    with pytest.raises(NameCollisionError, match="already exports"):
        second(rt)
    first(rt)  # the first one keeps working
    page = rt.export_prometheus()
    families = [line.split(" ")[2] for line in page.splitlines() if line.startswith("# TYPE")]
    assert len(families) == 1


def test_another_process_is_refused_too(redis_url: str, redis_prefix: str) -> None:
    with RealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as one:
        one.add_to_histogram("lat", 2.0, 60, {"route": "/a"})
    with RealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as other:
        with pytest.raises(NameCollisionError, match=r"counter 'lat_count'.*histogram 'lat'"):
            other.increment_counter("lat_count", 1, {"route": "/b"})
        with pytest.raises(NameCollisionError), other.batch() as batch:
            batch.increment_counter("lat_sum")
        assert other.stats()["buffered"] == 0


def test_names_that_do_not_meet_are_fine(rt: RealtimeMetrics) -> None:
    rt.add_to_histogram("lat", 1.0, 60)
    rt.add_to_histogram("lat", 1.0, 300)  # another window of the same histogram
    rt.increment_counter("lat_total")
    rt.track_rate("lat", 60)  # exports lat_per_second
    rt.set_gauge("lat_ms", 1)
    for labels in ({"a": "1"}, {"a": "2"}):
        rt.increment_counter("lat_total", 1, labels)
    page = rt.export_prometheus()
    assert "# TYPE lat summary" in page and "# TYPE lat_per_second gauge" in page
