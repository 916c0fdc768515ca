"""Redis unreachable (docs/reference.md): get_or_compute computes, counts errors, never raises."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from serving.cache import MetricsCache
from tests.realtime.support import REDIS_SERVER, RedisServer


def test_closed_port_computes_and_counts(closed_port: int) -> None:
    cache = MetricsCache.from_url(f"redis://127.0.0.1:{closed_port}/0", namespace="down")
    calls = []

    def compute() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    assert cache.get_or_compute("metrics:daily:x", compute, tags=["t"]) == {"n": 1}
    assert cache.get_or_compute("metrics:daily:x", compute, tags=["t"]) == {"n": 2}
    stats = cache.get_stats()
    assert stats["errors"] == 2
    assert stats["misses"] == 2
    assert stats["hits"] == 0
    assert stats["prefixes"]["metrics:daily"]["errors"] == 2


def test_outage_costs_no_connection_attempt_per_call(closed_port: int) -> None:
    cache = MetricsCache.from_url(f"redis://127.0.0.1:{closed_port}/0", retry_after=30)
    for i in range(500):
        assert cache.get_or_compute("k", lambda i=i: i) == i
    # Counted, not timed: the first call tried Redis, the other 499 skipped it.
    assert cache.get_stats()["errors"] == 500
    assert cache.get_stats()["redis_skipped"] >= 499


def test_other_operations_when_down(closed_port: int) -> None:
    cache = MetricsCache.from_url(f"redis://127.0.0.1:{closed_port}/0")
    assert cache.warm_cache([{"key": "k", "compute": lambda: 1}]) == 0
    # Invalidation reports the failure so the caller (a sensor) can retry it.
    with pytest.raises(redis.RedisError):
        cache.invalidate_by_tag("t")
    with pytest.raises(redis.RedisError):
        cache.clear_all()
    assert cache.get_stats()["errors"] >= 3


class _Proxy:
    """A TCP proxy to Redis that the test can cut and restore, on a fixed port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._server is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not on Linux.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()


@pytest.mark.timeout(60)
def test_recovers_when_redis_comes_back(redis_url: str, redis_prefix: str) -> None:
    target = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
    proxy = _Proxy((target.get("host", "localhost"), int(target.get("port", 6379))))
    proxy.start()
    db = target.get("db", 0)
    cache = MetricsCache.from_url(
        f"redis://127.0.0.1:{proxy.port}/{db}", namespace=redis_prefix, retry_after=0.2
    )
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    try:
        assert cache.get_or_compute("k:flap", compute) == 1
        assert cache.get_or_compute("k:flap", compute) == 1  # a hit through the proxy
        proxy.stop()
        assert cache.get_or_compute("k:flap", compute) == 2  # Redis gone: computed
        assert cache.get_stats()["errors"] >= 1
        proxy.start()
        time.sleep(0.3)
        assert cache.get_or_compute("k:flap", compute) == 1  # back: the cached value again
    finally:
        cache.close()
        proxy.stop()


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_pools_stay_whole_across_outages(tmp_path: Path) -> None:
    """Five outages of a private Redis with 2 connections per pool, reads going on from 4
    threads and 4 tasks: a connection lost to each failed send would leave none by the third
    outage. After each restart the blocking and the asyncio reads hit again."""
    server = RedisServer(tmp_path / "redis").start()
    cache = MetricsCache.from_url(server.url, namespace="outages", max_connections=2, retry_after=0)

    def read(count: int) -> None:
        for _ in range(count):
            cache.get_or_compute("k", lambda: "down")

    async def scenario() -> list[tuple[Any, bytes | None]]:
        seen = []
        try:
            for outage in range(5):
                server.stop()
                threads = [threading.Thread(target=read, args=(10,)) for _ in range(4)]
                for thread in threads:
                    thread.start()
                missed = await asyncio.gather(*(cache.fresh_json("k") for _ in range(4)))
                for thread in threads:
                    thread.join()
                assert missed == [None] * 4
                server.start()  # empty again
                for _ in range(2):  # a first call may meet a dead socket: computed, not stored
                    cache.get_or_compute("k", functools.partial(int, outage))
                hits = [await cache.fresh_json("k") for _ in range(2)]
                seen.append((cache.get_or_compute("k", lambda: "missed"), hits[-1]))
            return seen
        finally:
            await cache.aclose()

    try:
        assert asyncio.run(scenario()) == [(n, str(n).encode()) for n in range(5)]
    finally:
        cache.close()
        server.stop()
