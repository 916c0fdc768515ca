"""The cache on a three-node loopback Redis Cluster: hits, tag-aware reads, invalidation,
clear_all, warming, the asyncio hit and stampede protection behave as on one Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from serving.cache import MetricsCache
from serving.invalidation import invalidate_for_materialization, period_tags
from tests.realtime.support import REDIS_CLI, REDIS_SERVER, cluster_nodes, running_cluster
from tests.serving.test_stampede import THREADS, SlowCompute, _race

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None, reason="redis-server / redis-cli not installed"
)


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_cluster(tmp_path_factory.mktemp("cache-cluster")) as url:
        yield url


@pytest.fixture()
def make_cache(cluster_url: str) -> Iterator[Callable[..., MetricsCache]]:
    """Caches on the cluster, each in a namespace of this test; closed afterwards."""
    made: list[MetricsCache] = []
    base = f"ct{uuid.uuid4().hex[:8]}"

    def make(name: str = "metrics", **options: Any) -> MetricsCache:
        cache = MetricsCache.from_url(
            cluster_url, namespace=f"{base}:{name}", cluster=True, **options
        )
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


@pytest.fixture()
def ccache(make_cache: Callable[..., MetricsCache]) -> MetricsCache:
    cache = make_cache()
    assert isinstance(cache.client, RedisCluster)
    return cache


class Counter:
    """A compute function returning a known value and counting its calls."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


def _node_calls(client: RedisCluster) -> dict[str, dict[str, int]]:
    """Per node, how many times each command ran (INFO commandstats, INFO itself left out)."""
    out: dict[str, dict[str, int]] = {}
    for node in client.get_primaries():
        stats = client.info("commandstats", target_nodes=node)
        out[node.name] = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if name != "cmdstat_info"
        }
    return out


def test_an_entry_and_its_tag_versions_share_one_slot_and_a_hit_is_one_mget(
    ccache: MetricsCache,
) -> None:
    tags = period_tags("daily", date(2025, 1, 1), date(2025, 3, 10))  # months, weeks and days
    assert len(tags) == 5
    value = {"total": sum(range(100)), "day": date(2025, 3, 9)}
    compute = Counter(value)
    assert ccache.get_or_compute("metrics:dashboard:u1:asset:30d", compute, tags=tags) == value
    client = ccache.client
    assert isinstance(client, RedisCluster)
    layout = ccache.layout
    keys = [
        layout.entry("metrics:dashboard:u1:asset:30d"),
        layout.generation,
        *(layout.tag(t) for t in tags),
    ]
    assert all(client.exists(k) == 1 for k in keys)
    assert {key_slot(k.encode()) for k in keys} == {key_slot(layout.root.encode())}

    before = _node_calls(client)
    for _ in range(25):
        assert ccache.get_or_compute("metrics:dashboard:u1:asset:30d", compute, tags=tags) == value
    after = _node_calls(client)
    assert compute.calls == 1
    home = client.get_node_from_key(layout.root).name
    for name, calls in after.items():
        delta = {
            c: n - before[name].get(c, 0) for c, n in calls.items() if n != before[name].get(c, 0)
        }
        # One MGET per hit (the entry and its versions), on the namespace's node only.
        assert delta == ({"mget": 25} if name == home else {})
    stats = ccache.get_stats()
    assert (stats["hits"], stats["misses"], stats["errors"]) == (25, 1, 0)


def test_namespaces_spread_over_the_nodes(make_cache: Callable[..., MetricsCache]) -> None:
    caches = [make_cache(f"tenant{i}") for i in range(24)]
    for cache in caches:
        assert cache.get_or_compute("k", Counter(cache.namespace)) == cache.namespace
    client = caches[0].client
    assert isinstance(client, RedisCluster)
    nodes = {client.get_node_from_key(c.layout.root).name for c in caches}
    assert len(nodes) == 3


def test_tag_aware_reads_and_invalidation(ccache: MetricsCache) -> None:
    a1, a2 = Counter({"n": 1}), Counter({"n": 2})
    assert ccache.get_or_compute("k:a1", a1, tags=["entity:asset:a1", "grain:daily"]) == {"n": 1}
    assert ccache.get_or_compute("k:a2", a2, tags=["entity:asset:a2", "grain:daily"]) == {"n": 2}
    # A read with other tags, or none, hits while the entry's own tags are valid.
    assert ccache.get_or_compute("k:a1", a1, tags=["other"]) == {"n": 1}
    assert ccache.get_or_compute("k:a1", a1) == {"n": 1}
    assert (a1.calls, a2.calls) == (1, 1)

    assert ccache.invalidate_by_tag("entity:asset:a1") > 0
    ccache.get_or_compute("k:a1", a1, tags=["entity:asset:a1", "grain:daily"])
    ccache.get_or_compute("k:a2", a2, tags=["entity:asset:a2", "grain:daily"])
    assert (a1.calls, a2.calls) == (2, 1)

    first, second = ccache.invalidate_tags(["grain:daily", "entity:asset:a2"])
    assert first > 0 and second > 0
    ccache.get_or_compute("k:a1", a1, tags=["entity:asset:a1", "grain:daily"])
    ccache.get_or_compute("k:a2", a2, tags=["entity:asset:a2", "grain:daily"])
    assert (a1.calls, a2.calls) == (3, 2)


def test_materialization_invalidates_exactly_the_entries_that_read_the_day(
    ccache: MetricsCache,
) -> None:
    windows = {
        "march": (date(2025, 3, 1), date(2025, 3, 11)),
        "february": (date(2025, 2, 1), date(2025, 3, 1)),
    }
    counters = {name: Counter(name) for name in windows}
    for name, (start, end) in windows.items():
        ccache.get_or_compute(f"k:{name}", counters[name], tags=period_tags("daily", start, end))
    invalidate_for_materialization(ccache, "daily", "2025-03-04")
    for name, (start, end) in windows.items():
        ccache.get_or_compute(f"k:{name}", counters[name], tags=period_tags("daily", start, end))
    expected = {
        name: 1 + int(start <= date(2025, 3, 4) < end) for name, (start, end) in windows.items()
    }
    assert (
        {name: c.calls for name, c in counters.items()} == expected == {"march": 2, "february": 1}
    )


def test_clear_all_empties_its_namespace_only(make_cache: Callable[..., MetricsCache]) -> None:
    mine, other = make_cache("mine"), make_cache("other")
    mine_compute, other_compute = Counter("m"), Counter("o")
    for i in range(30):
        mine.get_or_compute(f"k:{i}", mine_compute, tags=[f"t{i % 3}"])
        other.get_or_compute(f"k:{i}", other_compute, tags=[f"t{i % 3}"])
    client = mine.client
    assert isinstance(client, RedisCluster)
    assert mine.clear_all() == 30  # the entries (the locks were released)
    assert list(client.scan_iter(match=f"{mine.layout.root}e:*")) == []
    assert len(list(client.scan_iter(match=f"{other.layout.root}e:*"))) == 30
    for i in range(30):
        mine.get_or_compute(f"k:{i}", mine_compute)
        other.get_or_compute(f"k:{i}", other_compute)
    assert (mine_compute.calls, other_compute.calls) == (60, 30)


def test_warm_cache_after_the_scripts_are_flushed(ccache: MetricsCache) -> None:
    client = ccache.client
    assert isinstance(client, RedisCluster)
    client.script_flush()  # as after a restart or on a new node: EVALSHA answers NOSCRIPT
    entries = [
        {"key": f"k:{i}", "compute": (lambda i=i: {"i": i, "square": i * i}), "tags": [f"t{i}"]}
        for i in range(20)
    ]
    assert ccache.warm_cache(entries) == 20
    for i in range(20):
        expected = {"i": i, "square": i * i}
        assert ccache.get_or_compute(f"k:{i}", lambda: pytest.fail("recomputed")) == expected
    ccache.invalidate_by_tag("t7")
    assert ccache.get_or_compute("k:7", lambda: "fresh") == "fresh"
    stats = ccache.get_stats()
    assert (stats["writes"], stats["hits"], stats["errors"]) == (21, 20, 0)


def test_the_asyncio_hit_reads_the_cluster(ccache: MetricsCache) -> None:
    stored = ccache.get_or_compute_json("k:json", lambda: {"total": 42}, tags=["asset:a1"])

    async def read() -> list[bytes | None]:
        try:
            return [await ccache.fresh_json("k:json"), await ccache.fresh_json("k:none")]
        finally:
            await ccache.aclose()

    assert asyncio.run(read()) == [stored, None]
    assert json.loads(stored) == {"total": 42}

    async def read_together() -> list[bytes | None]:  # one turn: one cluster pipeline
        try:
            return list(await asyncio.gather(*(ccache.fresh_json(k) for k in ("k:json",) * 3)))
        finally:
            await ccache.aclose()

    assert asyncio.run(read_together()) == [stored] * 3
    ccache.invalidate_by_tag("asset:a1")
    assert asyncio.run(read()) == [None, None]


@pytest.mark.parametrize("together", [True, False])
def test_200_concurrent_asyncio_hits_of_a_fresh_client(
    make_cache: Callable[..., MetricsCache], together: bool
) -> None:
    """Regression: a fresh asyncio cluster client sent hits started one per event-loop turn (as
    requests arrive) before it knew the slots: MOVED, redis-py closing every connection under
    the hits in flight, and AttributeError out of `fresh_json` or a skipped cache. Now each of
    200 concurrent hits (all in one turn, or one per turn) is the stored entry."""
    writer, reader = make_cache("hits"), make_cache("hits")  # two processes, one namespace
    stored = {
        i: writer.get_or_compute_json(f"k:{i}", lambda i=i: {"i": i}, tags=[f"t{i % 5}"])
        for i in range(200)
    }

    async def read(i: int) -> bytes | None:
        if not together:
            for _ in range(i):  # the i-th read starts i turns later
                await asyncio.sleep(0)
        return await reader.fresh_json(f"k:{i}")

    async def scenario() -> list[bytes | None]:
        try:
            return list(await asyncio.gather(*(read(i) for i in range(200))))
        finally:
            await reader.aclose()

    assert asyncio.run(scenario()) == [stored[i] for i in range(200)]
    assert [json.loads(stored[i]) for i in (0, 199)] == [{"i": 0}, {"i": 199}]
    stats = reader.get_stats()
    assert (stats["hits"], stats["errors"]) == (200, 0)


@pytest.mark.timeout(60)
def test_threads_beyond_a_node_pool_wait_for_a_connection(
    make_cache: Callable[..., MetricsCache],
) -> None:
    """Regression: redis-py's cluster nodes' default pool raised MaxConnectionsError as soon as
    `max_connections` threads used the namespace's node (300 of 400 reads of 8 threads with 2
    connections were errors). Now a thread waits up to the socket timeout for a connection."""
    cache = make_cache(max_connections=2)
    assert cache.get_or_compute("k", Counter(1)) == 1
    for _ in range(5):
        assert _race([cache], "k", Counter(2)) == [1] * THREADS
    stats = cache.get_stats()
    assert (stats["errors"], stats["redis_skipped"], stats["hits"]) == (0, 0, 5 * THREADS)


def test_concurrent_misses_compute_once_on_the_cluster(
    make_cache: Callable[..., MetricsCache],
) -> None:
    caches = [make_cache("herd") for _ in range(2)]  # two app servers, one namespace
    compute = SlowCompute()
    results = _race(caches, "metrics:dashboard:u:asset:30d", compute, tags=["t"])
    assert compute.calls == 1
    assert results == [{"call": 1}] * THREADS
    stats = [c.get_stats() for c in caches]
    assert sum(s["misses"] for s in stats) == 1
    assert sum(s["hits"] for s in stats) == THREADS - 1

    caches[0].invalidate_by_tag("t")
    results = _race(caches, "metrics:dashboard:u:asset:30d", compute, tags=["t"])
    assert compute.calls == 2
    assert results == [{"call": 2}] * THREADS


def test_a_node_that_is_not_the_namespace_home_is_never_asked(ccache: MetricsCache) -> None:
    client = ccache.client
    assert isinstance(client, RedisCluster)
    home = client.get_node_from_key(ccache.layout.root).name
    before = _node_calls(client)
    ccache.get_or_compute("k", Counter(1), tags=["a", "b"])
    ccache.invalidate_tags(["a", "b"])
    ccache.get_or_compute("k", Counter(2), tags=["a", "b"])
    after = _node_calls(client)
    for name, calls in after.items():
        changed = sum(n - before[name].get(c, 0) for c, n in calls.items())
        assert (changed > 0) == (name == home), (name, home)


def test_the_server_and_dagster_use_the_cluster_when_told(
    cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.realtime_ops import RealtimeResource
    from serving.http.context import ServerContext, ServerSettings

    namespace = f"ct{uuid.uuid4().hex[:8]}:server"
    monkeypatch.setenv("REDIS_URL", cluster_url)
    monkeypatch.setenv("METRICS_REDIS_CLUSTER", "1")
    monkeypatch.setenv("METRICS_CACHE_NAMESPACE", namespace)
    monkeypatch.setenv("METRICS_REALTIME_PREFIX", f"{namespace}:rt:")
    settings = ServerSettings()
    assert settings.redis_cluster
    context = ServerContext(settings)
    assert isinstance(context.cache.client, RedisCluster)
    assert context.cache.get_or_compute("k", lambda: {"n": 3}, tags=["grain:daily"]) == {"n": 3}
    assert context.realtime.increment_counter("views", 4) == 4
    resource = RealtimeResource()
    with resource.cache() as cache, resource.metrics() as rt:
        assert isinstance(cache.client, RedisCluster)
        assert cache.get_or_compute("k", lambda: pytest.fail("recomputed")) == {"n": 3}
        cache.invalidate_by_tag("grain:daily")  # what the materialization sensor does
        assert rt.get_counter("views") == 4
    assert context.cache.get_or_compute("k", lambda: {"n": 5}) == {"n": 5}
    context.cache.close()
    context.realtime.close()

    monkeypatch.setenv("METRICS_REDIS_CLUSTER", "maybe")
    with pytest.raises(ValueError, match="METRICS_REDIS_CLUSTER"):
        ServerSettings()
    monkeypatch.setenv("METRICS_REDIS_CLUSTER", "0")
    assert not ServerSettings().redis_cluster and not RealtimeResource().redis_cluster


def test_a_down_node_means_computing_uncached_never_an_error(tmp_path: Path) -> None:
    """The namespace's primary stops: reads compute (counted), invalidation raises for the
    sensor to retry; once it is back (empty) the cache fills again."""
    with cluster_nodes(tmp_path) as servers:
        # retry_after=0: every call tries Redis (no pause to sleep through in a test).
        cache = MetricsCache.from_url(servers[0].url, namespace="down", cluster=True, retry_after=0)
        client = cache.client
        assert isinstance(client, RedisCluster)
        assert cache.get_or_compute("k", Counter(1), tags=["t"]) == 1
        home = client.get_node_from_key(cache.layout.root)
        node = next(server for server in servers if server.port == home.port)
        node.stop()
        compute = Counter(2)
        assert [cache.get_or_compute("k", compute, tags=["t"]) for _ in range(3)] == [2, 2, 2]
        assert compute.calls == 3
        stats = cache.get_stats()
        assert (stats["errors"], stats["hits"]) == (3, 0)
        with pytest.raises(redis.RedisError):
            cache.invalidate_by_tag("t")
        node.start()
        deadline = time.monotonic() + 30  # until the restarted node serves its slots again
        with redis.Redis(port=node.port) as direct:
            while direct.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                assert time.monotonic() < deadline, "the node did not rejoin the cluster"
                time.sleep(0.05)
        again = Counter(3)
        assert [cache.get_or_compute("k", again, tags=["t"]) for _ in range(2)] == [3, 3]
        assert again.calls == 1
        cache.close()


def test_a_whole_cluster_down_is_an_outage_every_time(tmp_path: Path) -> None:
    """Regression: with every node down, redis-py re-reads the slots, reaches no node and raises
    RedisClusterException, which is no RedisError: fail-open writes (blocking and asyncio), the
    cache's get_or_compute and fresh_json let it out. Now both take it for the outage it is
    (realtime.availability.unavailable), outage after outage (2 connections per node): writes
    are buffered, reads computed, and once the nodes are back the buffered writes land and the
    cache fills again."""
    with cluster_nodes(tmp_path) as servers:
        url = servers[0].url
        rt = RealtimeMetrics.from_url(
            url, cluster=True, max_connections=2, retry_interval=0, prefix="whole:"
        )
        cache = MetricsCache.from_url(
            url, namespace="whole", cluster=True, max_connections=2, retry_after=0
        )

        def restart_all() -> None:
            for server in servers:
                server.start()
            deadline = time.monotonic() + 60
            for server in servers:
                with redis.Redis(port=server.port) as direct:
                    while direct.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                        assert time.monotonic() < deadline, "the cluster did not come back"
                        time.sleep(0.05)

        async def scenario() -> None:
            art = AsyncRealtimeMetrics.from_url(
                url, cluster=True, max_connections=2, retry_interval=0, prefix="whole:"
            )
            try:
                for outage in range(3):
                    assert rt.increment_counter("c", 1) == 1  # each restart starts empty
                    assert await art.increment_counter("c", 1) == 2
                    assert cache.get_or_compute("k", Counter(outage)) == outage
                    # (a first read after a restart may meet a dead socket: None, then a hit)
                    hits = [await cache.fresh_json("k") for _ in range(2)]
                    assert hits[-1] == str(outage).encode()
                    for server in servers:
                        server.stop()
                    assert rt.increment_counter("c", 1) is None  # buffered
                    assert await art.increment_counter("c", 1) is None
                    assert cache.get_or_compute("k", Counter("down")) == "down"
                    assert await cache.fresh_json("k") is None
                    restart_all()
                    deadline = time.monotonic() + 30  # a first replay may meet a dead socket
                    while rt.stats()["pending"] or art.stats()["pending"]:
                        assert time.monotonic() < deadline, "the buffers were not replayed"
                        rt.flush_buffer()
                        await art.flush_buffer()
                    assert rt.get_counter("c") == 2  # both buffered writes, nothing more
                    rt.client.delete(rt.ops.series("counter", "c", None)[1])
                    cache.clear_all()
            finally:
                await art.aclose()
                await cache.aclose()

        try:
            asyncio.run(scenario())
            stats = cache.get_stats()
            assert stats["errors"] == 3 and rt.stats()["pending"] == 0
        finally:
            rt.close()
            cache.close()
