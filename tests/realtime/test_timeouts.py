"""A stalled Redis (accepts, never answers) costs the realtime client and the cache one socket
timeout: writes fail open into the buffer, cache reads compute."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from serving import MetricsCache


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a stalled Redis."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_realtime_writes_to_a_stalled_server_fail_open_and_are_buffered(
    silent_server: int,
) -> None:
    rt = RealtimeMetrics.from_url(
        f"redis://127.0.0.1:{silent_server}/0", prefix="stalled:", socket_timeout=0.2
    )
    try:
        rt.increment_counter("requests", 1)  # does not raise: fail open
        assert rt.stats()["buffered"] == 1
    finally:
        rt.close()


def test_cache_reads_from_a_stalled_server_compute(silent_server: int) -> None:
    cache = MetricsCache.from_url(f"redis://127.0.0.1:{silent_server}/0", socket_timeout=0.2)
    try:
        assert cache.get_or_compute("k", lambda: {"a": 1}) == {"a": 1}
        assert cache.get_stats()["errors"] == 1
    finally:
        cache.close()


def test_async_writes_to_a_stalled_server_fail_open(silent_server: int) -> None:
    async def scenario() -> None:
        rt = AsyncRealtimeMetrics.from_url(
            f"redis://127.0.0.1:{silent_server}/0", prefix="stalled:", socket_timeout=0.2
        )
        assert await rt.increment_counter("requests", 1) is None
        assert rt.stats()["buffered"] == 1
        await rt.aclose()

    asyncio.run(scenario())
