"""Redis Cluster: a three-node cluster on loopback ports; every operation works."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.persistence import backup_to_warehouse, restore_from_warehouse
from realtime.registry import cleanup
from realtime.series import KINDS
from tests.realtime.support import REDIS_CLI, REDIS_SERVER, cluster_nodes, running_cluster
from warehouse import Warehouse

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None, reason="redis-server / redis-cli not installed"
)


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as url:
        yield url


@pytest.fixture()
def crt(cluster_url: str) -> Iterator[RealtimeMetrics]:
    metrics = RealtimeMetrics.from_url(cluster_url, cluster=True, fail_open=False)
    assert isinstance(metrics.client, RedisCluster)
    yield metrics
    metrics.client.flushall()  # the cluster is private to this module
    metrics.close()


def test_all_operations_on_a_cluster(crt: RealtimeMetrics) -> None:
    pages = [f"/page/{i}" for i in range(40)]
    for page in pages:
        assert crt.increment_counter("views", 2, {"page": page}) == 2
        crt.set_gauge("depth", 3, {"page": page}, unit="jobs")
        crt.add_to_histogram("latency", 10.0, 60, {"page": page})
        crt.track_rate("rps", 60, {"page": page})
    # Different series spread over the nodes' slots...
    slots = {key_slot(crt.ops.series("counter", "views", {"page": p})[1]) for p in pages}
    nodes = {
        crt.client.get_node_from_key(crt.ops.series("counter", "views", {"page": p})[1]).name
        for p in pages
    }
    assert len(slots) > 30 and len(nodes) == 3

    # ...and a batch touching all of them is still one pipeline (grouped per slot).
    rng = random.Random(5)
    values = [rng.lognormvariate(2, 1) for _ in range(400)]
    with crt.batch() as batch:
        for i, value in enumerate(values):
            labels = {"page": pages[i % len(pages)]}
            batch.increment_counter("views", 1, labels)
            batch.add_to_histogram("latency", value, 60, labels)
            batch.track_rate("rps", 60, labels)
            batch.track_unique("visitors", f"v{i % 13}", 60, labels)
            batch.track_top("referrers", f"r{i % 3}", 60, labels)
    assert batch.results[0] == 3

    for page in pages:
        assert crt.get_counter("views", {"page": page}) == 12
        assert crt.get_gauge("depth", {"page": page}) == 3
        assert crt.get_rate("rps", 60, {"page": page}) == pytest.approx(11 / 60)
    snap = crt.get_histogram("latency", 60, {"page": pages[0]})
    assert snap is not None and snap.count == 11
    # Page i gets the writes i, i + 40, ... (10 of them): members and items by plain Python.
    for index, page in enumerate(pages[:5]):
        mine = range(index, len(values), len(pages))
        assert crt.get_unique("visitors", 60, {"page": page}) == len({i % 13 for i in mine})
        expected: dict[str, int] = {}
        for i in mine:
            expected[f"r{i % 3}"] = expected.get(f"r{i % 3}", 0) + 1
        ranked = sorted(expected.items(), key=lambda pair: (-pair[1], pair[0]))
        assert crt.get_top("referrers", 3, 60, {"page": page}) == ranked

    page_text = crt.export_prometheus()
    assert page_text.count("views{page=") == 40 and "latency_count" in page_text
    assert (
        page_text.count("visitors{page=") == 40
        and 'referrers{page="/page/0",item="r0",window="60"} 4' in page_text
    )
    assert cleanup(crt) == dict.fromkeys(KINDS, 0)


def test_backup_and_restore_on_a_cluster(crt: RealtimeMetrics, warehouse: Warehouse) -> None:
    for i in range(10):
        crt.increment_counter("views", i + 1, {"page": str(i)})
    backup_to_warehouse(crt, warehouse)
    crt.client.flushall()  # what a restart of every node would do
    assert restore_from_warehouse(crt, warehouse) == 10
    assert [crt.get_counter("views", {"page": str(i)}) for i in range(10)] == list(range(1, 11))


def test_async_client_on_a_cluster(cluster_url: str) -> None:
    async def scenario() -> None:
        metrics = AsyncRealtimeMetrics.from_url(cluster_url, cluster=True, fail_open=False)
        for i in range(10):
            await metrics.increment_counter("async_views", 1, {"page": str(i)})
        async with metrics.batch() as batch:
            for i in range(10):
                batch.increment_counter("async_views", 1, {"page": str(i)})
                batch.add_to_histogram("async_latency", float(i), 60, {"page": str(i)})
                batch.track_unique("async_visitors", i, 60, {"page": str(i)})
        assert batch.results[0::3] == [2] * 10
        await metrics.track_top("async_pages", "/a", 60)
        assert await metrics.get_top("async_pages", 5, 60) == [("/a", 1)]
        assert await metrics.get_unique("async_visitors", 60, {"page": "7"}) == 1
        assert await metrics.get_counter("async_views", {"page": "3"}) == 2
        snap = await metrics.get_histogram("async_latency", 60, {"page": "4"})
        assert snap is not None and snap.max == 4.0
        assert "async_views" in await metrics.export_prometheus()
        await metrics.aclose()

    asyncio.run(scenario())


def test_aggregation_dotted_names_and_limits_on_a_cluster(
    cluster_url: str, crt: RealtimeMetrics
) -> None:
    pages = [f"/page/{i}" for i in range(30)]
    held = RealtimeMetrics.from_url(
        cluster_url, cluster=True, flush_interval=3600, max_label_sets=25
    )
    try:
        for i in range(900):
            labels = {"page": pages[i % len(pages)]}
            held.increment_counter("http.server.requests", 1 + i % 2, labels)
            held.add_to_histogram("http.server.duration", float(i % 17), 60, labels)
            held.track_rate("http.server.requests", 60, labels)
        assert held.flush() == 3 * 26  # 25 admitted label sets and the overflow, 3 kinds
    finally:
        held.close()
    expected: dict[str, int] = {}
    for i in range(900):
        page = pages[i % len(pages)] if i % len(pages) < 25 else "overflow"
        expected[page] = expected.get(page, 0) + 1 + i % 2
    for page in pages[:25]:
        assert crt.get_counter("http.server.requests", {"page": page}) == expected[page]
    overflow = {"otel_metric_overflow": "true"}
    assert crt.get_counter("http.server.requests", overflow) == expected["overflow"]
    snap = crt.get_histogram("http.server.duration", 60, overflow)
    assert snap is not None and snap.count == 5 * 30
    assert 'http_server_requests{otel_metric_overflow="true"}' in crt.export_prometheus()


def test_async_aggregation_on_a_cluster(cluster_url: str, crt: RealtimeMetrics) -> None:
    async def scenario() -> None:
        async with AsyncRealtimeMetrics.from_url(
            cluster_url, cluster=True, flush_interval=3600
        ) as metrics:
            await asyncio.gather(
                *(
                    metrics.increment_counter("async_held", 1, {"i": str(i % 10)})
                    for i in range(200)
                )
            )

    asyncio.run(scenario())  # aclose flushes
    assert [crt.get_counter("async_held", {"i": str(i)}) for i in range(10)] == [20] * 10


@pytest.mark.parametrize(("fail_open", "max_connections"), [(False, 32), (True, 32), (True, 4)])
def test_async_client_takes_200_concurrent_writes_on_a_cluster(
    cluster_url: str, crt: RealtimeMetrics, fail_open: bool, max_connections: int
) -> None:
    """Regression: a fresh asyncio cluster client given 200 writes at once sent them before it
    knew the slots (MOVED, then redis-py closing every connection under the writes in flight:
    AttributeError past fail open) and beyond max_connections (MaxConnectionsError, buffered as
    an outage). Now every write lands, none raises, none is buffered."""
    crt.client.script_flush()  # the scripts are loaded concurrently too (NOSCRIPT)
    values = [float(i % 37) for i in range(200)]

    async def scenario() -> dict[str, int]:
        # pool_timeout=30: on a busy machine a write may wait long for one of 4 connections.
        metrics = AsyncRealtimeMetrics.from_url(
            cluster_url,
            cluster=True,
            fail_open=fail_open,
            max_connections=max_connections,
            pool_timeout=30,
        )
        try:
            await asyncio.gather(
                *(metrics.increment_counter("burst", 1, {"i": str(i % 50)}) for i in range(200)),
                *(
                    metrics.add_to_histogram("burst_ms", value, 60, {"i": str(i % 5)})
                    for i, value in enumerate(values)
                ),
            )
            return metrics.stats()
        finally:
            await metrics.aclose()

    stats = asyncio.run(scenario())
    assert stats["buffered"] == stats["write_errors"] == 0
    assert [crt.get_counter("burst", {"i": str(i)}) for i in range(50)] == [4] * 50
    for label in range(5):
        mine = values[label::5]
        snap = crt.get_histogram("burst_ms", 60, {"i": str(label)})
        assert snap is not None
        summary = (snap.count, snap.sum, snap.min, snap.max)
        assert summary == (len(mine), sum(mine), min(mine), max(mine))


def test_a_cluster_command_waits_its_turn_then_is_unavailable(cluster_url: str) -> None:
    """With max_connections commands in flight, the next waits up to pool_timeout for a turn
    (as the standalone client's pool does), then is a ConnectionError: buffered under fail open."""

    async def scenario() -> tuple[type[BaseException], dict[str, int]]:
        strict = AsyncRealtimeMetrics.from_url(
            cluster_url, cluster=True, fail_open=False, max_connections=1, pool_timeout=0.05
        )
        lenient = AsyncRealtimeMetrics.from_url(
            cluster_url, cluster=True, max_connections=1, pool_timeout=0.05
        )
        try:
            await strict.increment_counter("turns", 1)
            await lenient.increment_counter("turns", 1)
            for metrics in (strict, lenient):
                assert metrics._gate is not None
            # The only turn held by a command that takes 0.5 s.
            holders = [
                asyncio.create_task(m._gate.run(asyncio.sleep, 0.5))  # type: ignore[union-attr]
                for m in (strict, lenient)
            ]
            await asyncio.sleep(0)
            with pytest.raises(redis.ConnectionError, match="No connection available") as raised:
                await strict.increment_counter("turns", 1)
            assert await lenient.increment_counter("turns", 1) is None  # buffered
            await asyncio.gather(*holders)
            return raised.type, lenient.stats()
        finally:
            await strict.aclose()
            await lenient.aclose()

    error, stats = asyncio.run(scenario())
    assert error is redis.ConnectionError
    assert (stats["buffered"], stats["write_errors"]) == (1, 1)


def test_blocking_cluster_threads_wait_for_a_connection(cluster_url: str) -> None:
    """Regression: redis-py's cluster nodes' default pool raised MaxConnectionsError as soon as
    `max_connections` threads used one node (301 of 400 writes of 8 threads with 2 connections
    failed). Now a thread waits up to `pool_timeout` for a connection, as on one Redis, and
    past it the write is a ConnectionError ("No connection available.")."""
    metrics = RealtimeMetrics.from_url(
        cluster_url, cluster=True, fail_open=False, max_connections=2, pool_timeout=0.2,
        prefix="waits:",
    )  # fmt: skip
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def write() -> None:
        barrier.wait()
        for _ in range(50):
            try:
                metrics.increment_counter("waits", 1)
            except BaseException as error:  # reported below
                errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == [] and metrics.get_counter("waits") == 400
        key = metrics.ops.series("counter", "waits", None)[1]
        pool = metrics.client.get_node_from_key(key).redis_connection.connection_pool
        held = [pool.get_connection() for _ in range(2)]  # the node's every connection
        try:
            with pytest.raises(redis.ConnectionError, match="No connection available"):
                metrics.increment_counter("waits", 1)
        finally:
            for connection in held:
                pool.release(connection)
        assert metrics.increment_counter("waits", 1) == 401
    finally:
        metrics.close()


def test_writes_resume_after_cancelled_reconnects_used_up_a_nodes_connections(
    cluster_url: str,
) -> None:
    """Regression (redis-py issue 4110): a write cancelled while redis-py (re)connects the
    connection it sends on strands that connection: it never returns to its node's pool. Once
    a node had lost all `max_connections`, every command to it raised MaxConnectionsError for
    the client's life (under fail open: every write buffered, forever). Now the gate then
    replaces the client, and the writes land again."""

    async def scenario() -> tuple[bool, list[int | float | None], int | float | None, int]:
        metrics = AsyncRealtimeMetrics.from_url(
            cluster_url, cluster=True, max_connections=2, retry_interval=0, prefix="strand:"
        )
        try:
            assert await metrics.increment_counter("c", 1) == 1
            first = metrics.client
            for _ in range(3):  # one more than the node's connections
                for node in metrics.client.get_nodes():
                    await node.disconnect()  # the next command connects again...
                task = asyncio.create_task(metrics.increment_counter("c", 1))
                await asyncio.sleep(0)  # ...and is cancelled while it does
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            values = [await metrics.increment_counter("c", 1) for _ in range(3)]
            await metrics.flush_buffer()
            total = await metrics.get_counter("c")
            return metrics.client is not first, values, total, metrics.stats()["pending"]
        finally:
            await metrics.aclose()

    renewed, values, total, pending = asyncio.run(scenario())
    assert renewed  # the node did run out of connections
    assert isinstance(values[-1], int) and total == values[-1] and pending == 0


def test_async_writes_fail_open_while_a_cluster_node_is_down(tmp_path: Path) -> None:
    """Regression: around a node's outage redis-py closes connections while other writes use
    them, and some of those writes failed with an AttributeError from inside redis-py that fail
    open let through (mostly as the node came back). Now each is buffered like any write that
    cannot reach Redis, and replayed: nothing raises, nothing is lost."""
    labels = [{"i": str(i)} for i in range(30)]
    with cluster_nodes(tmp_path) as servers:
        # retry_interval=0: every write tries Redis, so many meet the closing connections.
        metrics = AsyncRealtimeMetrics.from_url(
            servers[0].url, cluster=True, retry_interval=0, max_connections=64
        )
        check = RealtimeMetrics.from_url(servers[0].url, cluster=True, fail_open=False)
        down = servers[1]
        on_down = {
            label["i"]
            for label in labels
            if check.client.get_node_from_key(check.ops.series("counter", "up", label)[1]).port
            == down.port
        }
        assert 0 < len(on_down) < len(labels)

        async def burst() -> None:  # 10 writes per label set, all at once
            await asyncio.gather(
                *(metrics.increment_counter("up", 1, labels[i % 30]) for i in range(300))
            )

        async def scenario() -> dict[str, int]:
            await burst()
            down.stop()
            await burst()  # what cannot reach the node is buffered
            down.start()  # back empty: its series get only the writes from now on
            for _ in range(3):
                await burst()  # while it rejoins the cluster
            # A node down for longer than the cluster's node timeout (a busy machine) is marked
            # failed, and the cluster clears that only some seconds after it is back.
            deadline = time.monotonic() + 60
            with redis.Redis(port=down.port) as direct:
                while direct.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    assert time.monotonic() < deadline, "the node did not rejoin the cluster"
                    await asyncio.sleep(0.05)
            while metrics.stats()["pending"]:
                assert time.monotonic() < deadline, "the buffer was not replayed"
                await metrics.flush_buffer()
                await asyncio.sleep(0.05)
            await metrics.aclose()
            return metrics.stats()

        stats = asyncio.run(scenario())
        assert stats["buffered"] >= 10 * len(on_down)  # at least the down node's burst
        assert stats["replayed"] == stats["buffered"]
        assert stats["dropped"] == stats["failed"] == 0
        # Nothing lost. A write whose connection closed after Redis ran it was buffered and
        # replayed too (at least once, see realtime.core), so a few may count twice.
        expected = {label["i"]: 40 if label["i"] in on_down else 50 for label in labels}
        got = {label["i"]: check.get_counter("up", label) for label in labels}
        assert all(got[i] >= expected[i] for i in expected), (got, expected)
        check.close()
