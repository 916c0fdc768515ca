"""Client-side aggregation (flush_interval): writes merged in process and flushed in batches;
totals stay exact across threads and processes, through outages, on close and at exit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.sketch import bucket_field
from tests.realtime.support import (
    AsyncGatedConnection,
    CountingConnection,
    GatedConnection,
    RedisServer,
)

PROCESSES, THREADS, WRITES = 6, 4, 1500

# One worker process: THREADS threads writing counters, rates and histograms with a flush
# interval; odd workers close the client, even ones just exit (the atexit flush).
WORKER = textwrap.dedent(
    """
    import sys, threading
    from realtime import RealtimeMetrics

    url, prefix, index, threads, writes = sys.argv[1:6]
    index, threads, writes = int(index), int(threads), int(writes)
    rt = RealtimeMetrics.from_url(url, prefix=prefix, fail_open=False, flush_interval=0.02)

    def work(t: int) -> None:
        for i in range(writes):
            rt.increment_counter("hits", 1 + i % 3, {"route": f"/r{(index + t + i) % 5}"})
            rt.track_rate("rps", 60, count=1 + i % 2)
            rt.add_to_histogram("lat", float((index * 7 + t * 3 + i) % 50), 60)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(rt.stats()["aggregated"])
    if index % 2:
        rt.close()
    """
)


def _expected() -> tuple[Counter[str], int, list[float]]:
    """Plain Python: the counter per route, the rate's count and the histogram's values."""
    hits: Counter[str] = Counter()
    events = 0
    values: list[float] = []
    for index in range(PROCESSES):
        for t in range(THREADS):
            for i in range(WRITES):
                hits[f"/r{(index + t + i) % 5}"] += 1 + i % 3
                events += 1 + i % 2
                values.append(float((index * 7 + t * 3 + i) % 50))
    return hits, events, values


def test_exact_totals_from_six_processes_of_four_threads(
    redis_url: str, redis_prefix: str, rt: RealtimeMetrics
) -> None:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                redis_url,
                redis_prefix,
                str(i),
                str(THREADS),
                str(WRITES),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    merged = 0
    for worker in workers:
        out, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0
        merged += int(out)
    assert merged == PROCESSES * THREADS * WRITES * 3

    hits, events, values = _expected()
    for route, total in hits.items():
        assert rt.get_counter("hits", {"route": route}) == total
    rate = rt.get_rate("rps", 60)
    assert rate is not None and round(rate * 60, 6) == events
    snap = rt.get_histogram("lat", 60)
    assert snap is not None
    assert (snap.count, snap.sum, snap.min, snap.max) == (
        len(values),
        sum(values),
        min(values),
        max(values),
    )


def test_threads_whose_first_writes_race_start_one_flusher_that_close_stops(
    redis_url: str, redis_prefix: str, rt: RealtimeMetrics
) -> None:
    """A second flush thread would outlive `close()` and could lose the writes it took when the
    process exits (seen as a few hundred missing counts in the test above)."""
    threads, rounds = 8, 20
    for round_ in range(rounds):
        before = set(threading.enumerate())
        metrics = RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, flush_interval=3600)
        start = threading.Barrier(threads)

        def first_write(
            metrics: RealtimeMetrics = metrics, start: threading.Barrier = start
        ) -> None:
            start.wait()
            metrics.increment_counter("raced")

        writers = [threading.Thread(target=first_write) for _ in range(threads)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        metrics.close()
        left = [t for t in threading.enumerate() if t not in before and t.name == "realtime-flush"]
        assert left == [], f"round {round_}: {len(left)} flush threads outlived close()"
    assert rt.get_counter("raced") == threads * rounds


@pytest.fixture()
def held(redis_url: str, redis_prefix: str) -> Iterator[RealtimeMetrics]:
    """An aggregating client whose interval never passes in a test: flushes are explicit."""
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    metrics = RealtimeMetrics(
        redis.Redis(connection_pool=pool), prefix=redis_prefix, flush_interval=3600
    )
    yield metrics
    metrics.close()


def test_reads_see_what_was_flushed_and_a_flush_is_one_round_trip(
    held: RealtimeMetrics, rt: RealtimeMetrics
) -> None:
    held.increment_counter("hits", 1, {"route": "/a"})  # claims the names (one round trip)
    held.add_to_histogram("lat", 1.0, 60)
    held.track_rate("rps", 60)
    held.flush()
    CountingConnection.sends = 0
    for i in range(3000):
        assert held.increment_counter("hits", 1, {"route": "/a"}) is None
        held.add_to_histogram("lat", 1.0 + i % 10, 60)
        held.track_rate("rps", 60, count=2)
    assert CountingConnection.sends == 0 and rt.get_counter("hits", {"route": "/a"}) == 1
    assert held.flush() == 3  # one merged write per series
    assert CountingConnection.sends == 1
    assert rt.get_counter("hits", {"route": "/a"}) == 3001
    snap = rt.get_histogram("lat", 60)
    assert snap is not None and (snap.count, snap.max) == (3001, 10.0)
    assert held.stats()["aggregated"] == 3 + 9000


def test_single_batched_and_merged_writes_name_the_same_buckets(
    held: RealtimeMetrics, rt: RealtimeMetrics
) -> None:
    """Every path names a value's sketch bucket as realtime.sketch.bucket_field does, also just
    below magnitude 1 (p0, m0), where Lua's math.ceil gives -0: single and batched writes used
    to store p-0 there while merged ones stored p0."""
    values = [0.99, -0.99, 0.985, 1.0, -1.0, 0.5, 12.25, 1e-12, -3.5, 0.99]
    expected = Counter(bucket_field(value) for value in values)
    assert expected["p0"] == 4 and expected["m0"] == 2
    for value in values:
        rt.add_to_histogram("single", value, 60)
        held.add_to_histogram("merged", value, 60)
    with rt.batch() as batch:
        for value in values:
            batch.add_to_histogram("batched", value, 60)
    held.flush()
    for name in ("single", "batched", "merged"):
        snap = rt.get_histogram(name, 60)
        assert snap is not None and dict(snap.buckets) == expected, name


def test_merged_histograms_equal_write_by_write_ones(
    held: RealtimeMetrics, rt: RealtimeMetrics
) -> None:
    values = [0.0, -3.5, 1e-12, 7, 12.25, 99.9, 1000.0, -0.001] + [i * 0.37 for i in range(500)]
    for value in values:
        held.add_to_histogram("merged", value, 60, {"k": "v"})
        rt.add_to_histogram("direct", value, 60, {"k": "v"})
    held.flush()
    held.add_to_histogram("merged", 5000.0, 60, {"k": "v"})  # a second merge into the slot
    rt.add_to_histogram("direct", 5000.0, 60, {"k": "v"})
    held.flush()
    merged = rt.get_histogram("merged", 60, {"k": "v"})
    direct = rt.get_histogram("direct", 60, {"k": "v"})
    assert merged is not None and direct is not None
    assert merged.buckets == direct.buckets
    assert (merged.count, merged.min, merged.max) == (len(values) + 1, -3.5, 5000.0)
    assert merged.sum == pytest.approx(sum(values) + 5000.0, rel=1e-12)
    for q in (1, 50, 90, 99, 99.9):
        assert merged.percentile(q) == direct.percentile(q)


def test_sums_stay_within_exact_range(held: RealtimeMetrics, rt: RealtimeMetrics) -> None:
    for _ in range(3):
        held.increment_counter("big", 2**52)
    held.flush()
    assert rt.get_counter("big") == 3 * 2**52


def test_gauges_unique_and_top_are_not_held(held: RealtimeMetrics, rt: RealtimeMetrics) -> None:
    held.set_gauge("depth", 4)
    held.track_unique("visitors", "a")
    held.track_top("pages", "/a")
    assert rt.get_gauge("depth") == 4
    assert rt.get_unique("visitors") == 1 and rt.get_top("pages", 1) == [("/a", 1)]


def test_nothing_is_lost_while_redis_is_down_for_less_than_the_buffer(
    redis_server_factory: type[RedisServer],
) -> None:
    server = redis_server_factory()  # not started: Redis is down
    metrics = RealtimeMetrics.from_url(
        server.url, flush_interval=0.01, socket_connect_timeout=0.2, retry_interval=0.05
    )
    expected: Counter[str] = Counter()
    try:
        for _ in range(20):
            for i in range(200):
                route = f"/r{i % 4}"
                metrics.increment_counter("hits", 1 + i % 2, {"route": route})
                expected[route] += 1 + i % 2
            metrics.flush()  # what the background thread does too: into the buffer
        stats = metrics.stats()
        assert stats["pending"] > 0 and stats["dropped"] == 0
        server.start()
        metrics.flush()  # replays the buffer
        assert metrics.stats()["pending"] == 0
        for route, total in expected.items():
            assert metrics.get_counter("hits", {"route": route}) == total
    finally:
        metrics.close()


def test_flush_waits_for_a_replay_under_way_in_another_thread(
    redis_server_factory: type[RedisServer],
) -> None:
    """flush() used to return while the background thread was replaying the buffer it had
    emptied, before those writes reached Redis: a read right after it saw 0 of 1000 (3 runs in
    15 of the test above under load). Here the other thread is held inside its replay."""
    server = redis_server_factory()  # not started: the writes are buffered
    pool = redis.ConnectionPool(port=server.port, connection_class=GatedConnection)
    metrics = RealtimeMetrics(redis.Redis(connection_pool=pool), flush_interval=3600)
    returned: list[int | float | None] = []
    try:
        metrics.increment_counter("hits", 7)
        metrics.flush()
        assert metrics.stats()["pending"] == 1
        server.start()
        GatedConnection.entered.clear()
        GatedConnection.gate = threading.Event()
        replaying = threading.Thread(target=metrics.flush)
        replaying.start()
        assert GatedConnection.entered.wait(30), "the replay did not reach Redis"
        assert metrics.stats()["pending"] == 0  # taken out of the buffer, not in Redis yet
        reader = RealtimeMetrics.from_url(server.url)

        def flush_then_read() -> None:
            metrics.flush()
            returned.append(reader.get_counter("hits"))

        flushing = threading.Thread(target=flush_then_read)
        flushing.start()
        flushing.join(0.5)  # without the wait it has returned (and read) by now
        GatedConnection.gate.set()
        replaying.join(30)
        flushing.join(30)
        reader.close()
    finally:
        GatedConnection.gate = None
        metrics.close()
    assert returned == [7]


def test_async_flush_waits_for_a_replay_under_way_in_another_task(
    redis_server_factory: type[RedisServer],
) -> None:
    """The asyncio side of the test above: a flush() that finds another task replaying the
    buffer waits for that replay, so a read right after it sees the writes."""
    server = redis_server_factory()  # not started: the writes are buffered

    async def scenario() -> int | float | None:
        pool = redis.asyncio.ConnectionPool(port=server.port, connection_class=AsyncGatedConnection)
        metrics = AsyncRealtimeMetrics(
            redis.asyncio.Redis(connection_pool=pool), flush_interval=3600
        )
        try:
            await metrics.increment_counter("hits", 7)
            await metrics.flush()
            assert metrics.stats()["pending"] == 1
            server.start()
            AsyncGatedConnection.entered = asyncio.Event()
            AsyncGatedConnection.gate = asyncio.Event()
            replaying = asyncio.create_task(metrics.flush())
            await asyncio.wait_for(AsyncGatedConnection.entered.wait(), 30)
            assert metrics.stats()["pending"] == 0  # taken out of the buffer, not in Redis yet
            flushing = asyncio.create_task(metrics.flush())
            await asyncio.sleep(0.2)  # without the wait it has returned by now
            assert not flushing.done()
            AsyncGatedConnection.gate.set()
            await asyncio.wait_for(asyncio.gather(replaying, flushing), 30)
        finally:
            AsyncGatedConnection.gate = AsyncGatedConnection.entered = None
            await metrics.aclose()
        reader = RealtimeMetrics.from_url(server.url)
        try:
            return reader.get_counter("hits")
        finally:
            reader.close()

    assert asyncio.run(scenario()) == 7


def test_background_flush_and_close(redis_url: str, redis_prefix: str, rt: RealtimeMetrics) -> None:
    metrics = RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, flush_interval=0.01)
    for _ in range(100):
        metrics.increment_counter("ticks")
    for _ in range(500):  # the thread flushes within a few intervals; no wall-clock assertion
        if rt.get_counter("ticks") == 100:
            break
        time.sleep(0.01)
    assert rt.get_counter("ticks") == 100
    metrics.increment_counter("ticks", 5)
    metrics.close()  # flushes what is left
    assert rt.get_counter("ticks") == 105


def test_asyncio_flushes_in_the_background_and_when_the_loop_ends(
    redis_url: str, redis_prefix: str, rt: RealtimeMetrics
) -> None:
    async def scenario() -> None:
        metrics = AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix, flush_interval=0.01)
        await asyncio.gather(*(metrics.increment_counter("async_hits") for _ in range(300)))
        for _ in range(500):
            if await metrics.get_counter("async_hits") == 300:
                break
            await asyncio.sleep(0.01)
        assert await metrics.get_counter("async_hits") == 300
        async with AsyncRealtimeMetrics.from_url(
            redis_url, prefix=redis_prefix, flush_interval=3600
        ) as closing:
            await closing.add_to_histogram("async_lat", 2.0, 60)
        # Left open: asyncio.run cancels the flush task, which flushes once more.
        await metrics.increment_counter("async_hits", 7)

    asyncio.run(scenario())
    assert rt.get_counter("async_hits") == 307
    snap = rt.get_histogram("async_lat", 60)
    assert snap is not None and snap.count == 1


def test_writes_of_a_flush_cancelled_before_redis_got_them_go_with_the_last_flush(
    redis_url: str, redis_prefix: str, rt: RealtimeMetrics
) -> None:
    """The loop ending while a flush waits for its connection (what `asyncio.run` does to a
    flush task that woke up in its last turn) loses none of the writes that flush took."""

    async def scenario() -> None:
        metrics = AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix, flush_interval=3600)
        await metrics.get_counter("cut")  # a pooled connection: the flush pauses to check it
        await metrics.increment_counter("cut", 5)
        await metrics.add_to_histogram("cut_lat", 1.5, 60)
        flushing = asyncio.create_task(metrics.flush())
        await asyncio.sleep(0)  # the flush has taken the writes and waits on the connection
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        await metrics.aclose()

    asyncio.run(scenario())
    assert rt.get_counter("cut") == 5
    snap = rt.get_histogram("cut_lat", 60)
    assert snap is not None and snap.count == 1


def test_flush_interval_is_checked(redis_url: str) -> None:
    for bad in (0, -1, 4000, "1"):
        with pytest.raises(ValueError, match="flush_interval"):
            RealtimeMetrics.from_url(redis_url, flush_interval=bad)  # type: ignore[arg-type]


def test_a_forked_child_does_not_send_its_parents_sums_again(
    redis_url: str, redis_prefix: str, rt: RealtimeMetrics
) -> None:
    parent = RealtimeMetrics.from_url(redis_url, prefix=redis_prefix, flush_interval=3600)
    try:
        for _ in range(10):
            parent.increment_counter("forked")  # held in the parent when it forks
        pid = os.fork()
        if pid == 0:  # the child: its own writes only, then out without the parent's atexit
            code = 1
            try:
                for _ in range(3):
                    parent.increment_counter("forked")
                parent.close()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert rt.get_counter("forked") == 3
    finally:
        parent.close()
    assert rt.get_counter("forked") == 13
