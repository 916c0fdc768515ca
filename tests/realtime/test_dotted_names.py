"""Dotted metric names (OpenTelemetry's ``http.server.duration``): accepted, read back as
written, exported with underscores; a name whose export meets another metric's is refused."""

from __future__ import annotations

import asyncio

import pytest

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.names import NameCollisionError
from realtime.persistence import backup_to_warehouse, restore_from_warehouse
from tests.realtime.support import keys_under
from tests.realtime.test_prometheus import parse_exposition
from warehouse import Warehouse


def test_dotted_names_round_trip_and_export(rt: RealtimeMetrics) -> None:
    values = [12.0, 20.0, 31.5]
    assert rt.increment_counter("http.server.requests", 2, {"route": "/a"}) == 2
    rt.set_gauge("process.runtime.threads", 7, unit="threads")
    for value in values:
        rt.add_to_histogram("http.server.duration", value, 60, {"route": "/a"})
    rt.track_rate("http.server.requests", 60, count=30)

    assert rt.get_counter("http.server.requests", {"route": "/a"}) == 2
    assert rt.get_gauge("process.runtime.threads") == 7
    snap = rt.get_histogram("http.server.duration", 60, {"route": "/a"})
    assert snap is not None
    assert (snap.count, snap.sum, snap.min, snap.max) == (3, sum(values), 12.0, 31.5)
    assert rt.get_rate("http.server.requests", 60) == pytest.approx(30 / 60)

    page = rt.export_prometheus()
    families = parse_exposition(page)
    assert families["http_server_requests"] == (
        "counter",
        [("http_server_requests", {"route": "/a"}, 2.0)],
    )
    assert families["process_runtime_threads"][1] == [("process_runtime_threads", {}, 7.0)]
    kind, samples = families["http_server_duration"]
    assert kind == "summary"
    assert ("http_server_duration_count", {"route": "/a", "window": "60"}, 3.0) in samples
    assert families["http_server_requests_per_second"][1] == [
        ("http_server_requests_per_second", {"window": "60"}, 0.5)
    ]
    assert "# HELP http_server_duration Realtime histogram http.server.duration" in page


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("http.requests", "http_requests"),
        ("http_requests", "http.requests"),
        ("a.b_c", "a_b.c"),
    ],
)
def test_a_name_whose_translation_is_taken_is_refused_at_the_write(
    rt: RealtimeMetrics, first: str, second: str
) -> None:
    rt.increment_counter(first)
    with pytest.raises(NameCollisionError, match=r"http_requests|a_b_c"):
        rt.increment_counter(second, 1, {"route": "/x"})
    assert rt.increment_counter(first) == 2  # the first keeps working
    families = parse_exposition(rt.export_prometheus())
    assert list(families) == [first.replace(".", "_")]


def test_translation_meets_other_kinds_samples(rt: RealtimeMetrics) -> None:
    rt.add_to_histogram("rpc.latency", 1.0, 60)
    with pytest.raises(NameCollisionError, match="rpc_latency_count"):
        rt.increment_counter("rpc.latency_count")
    with pytest.raises(NameCollisionError):
        rt.set_gauge("rpc_latency.sum", 1)
    rt.track_rate("rpc.latency", 60)  # exports rpc_latency_per_second: no meeting


def test_async_client_takes_dotted_names(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> None:
        async with AsyncRealtimeMetrics.from_url(
            redis_url, prefix=redis_prefix, fail_open=False
        ) as rt:
            assert await rt.increment_counter("db.client.calls", 3) == 3
            with pytest.raises(NameCollisionError):
                await rt.increment_counter("db_client.calls")
            assert "db_client_calls 3" in await rt.export_prometheus()

    asyncio.run(scenario())


def test_dotted_names_back_up_and_restore(rt: RealtimeMetrics, warehouse: Warehouse) -> None:
    rt.increment_counter("queue.jobs.done", 41, {"queue": "mail"})
    rt.set_gauge("queue.depth", 5)
    backup_to_warehouse(rt, warehouse)
    rt.client.delete(*keys_under(rt.client, rt.settings.prefix))  # what a restart would do
    assert restore_from_warehouse(rt, warehouse) == 2  # the counter and the gauge
    assert rt.get_counter("queue.jobs.done", {"queue": "mail"}) == 41
    assert rt.get_gauge("queue.depth") == 5
