"""Kernel socket timeouts (realtime.kernel_timeout): they bound a stalled Redis like redis-py's
own timeout does, and clients built from redis:// URLs use them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from realtime.kernel_timeout import SUPPORTED, KernelTimeoutConnection, pool_options
from realtime.metrics import RealtimeMetrics
from serving.cache import MetricsCache

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="kernel socket timeouts are Linux-only")


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


def test_pool_options_choose_the_kernel_timeout_for_plain_tcp_only() -> None:
    assert pool_options("redis://localhost:6379/0", 0.5)["connection_class"] is (
        KernelTimeoutConnection
    )
    assert pool_options("rediss://localhost:6379/0", 0.5) == {"socket_timeout": 0.5}
    assert pool_options("unix:///tmp/redis.sock", 0.5) == {"socket_timeout": 0.5}
    assert pool_options("redis://localhost:6379/0", None) == {"socket_timeout": None}


def test_a_stalled_server_raises_timeout_error_after_the_timeout(silent_server: int) -> None:
    client = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=KernelTimeoutConnection,
            host="127.0.0.1",
            port=silent_server,
            io_timeout=0.3,
            socket_connect_timeout=1.0,
        )
    )
    with pytest.raises(redis.TimeoutError, match=r"after 0\.3s"):
        client.ping()


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


def test_clients_from_redis_urls_use_kernel_timeouts_and_work(
    redis_url: str, redis_prefix: str
) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("REDIS_URL is not a plain TCP URL")
    rt = RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, fail_open=False)
    cache = MetricsCache.from_url(redis_url, namespace=f"{redis_prefix}cache")
    try:
        for client in (rt.client, cache.client):
            pool = client.connection_pool
            assert pool.connection_class is KernelTimeoutConnection
            assert pool.connection_kwargs["socket_timeout"] is None
        assert rt.increment_counter("requests", 2) == 2
        assert cache.get_or_compute("k", lambda: {"a": 1}) == {"a": 1}
    finally:
        cache.clear_all()
        rt.close()
