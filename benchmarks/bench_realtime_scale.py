"""Realtime at scale: Redis server time per logical write, and sustained writes per second from
many processes, with and without client-side aggregation (``flush_interval``).

    .venv/bin/python benchmarks/bench_realtime_scale.py [--writes N] [--seconds S]

Runs on a private redis-server (a free loopback port, no persistence) so that Redis's own
``INFO commandstats`` counts only this benchmark's commands; REDIS_URL when redis-server is not
installed (then other clients' commands count too).

1. Server time: N increments of one hot counter, after ``CONFIG RESETSTAT``; the server's
   microseconds on the client's commands (its scripts, whose time includes the commands they
   run, and the registry's ZADD) divided by N logical writes, against the microseconds per
   call of a bare INCRBY (pipelined, its cheapest). Target with aggregation: at most 0.2x.
2. Throughput: 8 processes write one hot counter for S seconds, against 8 processes of bare
   redis-py INCR; logical writes per second. Target with aggregation: at least 3x raw INCR.
   The aggregated total is checked against Redis afterwards (it must be exact).
Per-call speed without aggregation (target 0.7x a bare INCR round trip) is bench_realtime.py's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.metrics import RealtimeMetrics

SERVER_TIME_TARGET = 0.2  # at most, relative to a bare INCRBY
THROUGHPUT_TARGET = 3.0  # at least, relative to raw INCR
PROCESSES = 8
FLUSH_INTERVAL = 0.1
PIPELINE = 1000


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server on a free loopback port for the benchmark's lifetime (REDIS_URL if none)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield os.environ.get("REDIS_URL", "redis://localhost:6379/0")
        return
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            for _ in range(500):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.01)
            yield url
        finally:
            client.close()
            process.terminate()
            process.wait(timeout=10)


# The commands a realtime client sends itself: its scripts (whose time includes the commands
# they run, which commandstats also lists on their own) and the registry's ZADD.
CLIENT_COMMANDS = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_script|load", "cmdstat_zadd")


def server_microseconds(
    client: redis.Redis, run: Callable[[], object], commands: tuple[str, ...]
) -> float:
    """Redis's own microseconds spent on `commands` (commandstats names) while `run` ran."""
    client.config_resetstat()
    run()
    stats = client.info("commandstats")
    return sum(float(stats[name]["usec"]) for name in commands if name in stats)


def bare_incrby(client: redis.Redis, key: str, writes: int) -> None:
    for start in range(0, writes, PIPELINE):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(PIPELINE, writes - start)):
            pipe.incrby(key, 1)
        pipe.execute()


def hot_counter(url: str, prefix: str, writes: int, flush_interval: float | None) -> None:
    rt = RealtimeMetrics.from_url(
        url, prefix=prefix, fail_open=False, flush_interval=flush_interval
    )
    labels = {"route": "/api/items"}
    for _ in range(writes):
        rt.increment_counter("bench_hot", 1, labels)
    rt.close()  # flushes what aggregation holds


def _raw_worker(url: str, key: str, seconds: float, start: Any, results: Any) -> None:
    client = redis.Redis.from_url(url)
    count = 0
    start.wait()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        client.incr(key)
        count += 1
    client.close()
    results.put(count)


def _aggregated_worker(url: str, prefix: str, seconds: float, start: Any, results: Any) -> None:
    rt = RealtimeMetrics.from_url(url, prefix=prefix, flush_interval=FLUSH_INTERVAL)
    labels = {"route": "/api/items"}
    write = rt.increment_counter
    rt.increment_counter("bench_sustained", 0, labels)  # claims the names before the clock
    count = 0
    start.wait()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            write("bench_sustained", 1, labels)
        count += 100
    rt.close()
    results.put(count)


def sustained(target: Callable[..., None], args: tuple[Any, ...], seconds: float) -> int:
    """Writes done by PROCESSES processes running `target` for `seconds` together."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(target=target, args=(*args, seconds, start, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # let every process import and connect
    start.set()
    total = sum(results.get(timeout=seconds + 120) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200_000, help="writes for server time")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per throughput run")
    options = parser.parse_args()
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    rows: list[tuple[str, str, str, float, str]] = []
    with private_redis() as url:
        client = redis.Redis.from_url(url)
        writes = options.writes
        base = server_microseconds(
            client, lambda: bare_incrby(client, f"{prefix}bare", writes), ("cmdstat_incrby",)
        )
        base_per = base / writes
        direct_writes = writes // 10  # one round trip each: fewer, same per-write figure
        direct = server_microseconds(
            client, lambda: hot_counter(url, prefix, direct_writes, None), CLIENT_COMMANDS
        )
        merged = server_microseconds(
            client, lambda: hot_counter(url, prefix, writes, FLUSH_INTERVAL), CLIENT_COMMANDS
        )
        for label, spent, count in (
            ("per-call writes", direct, direct_writes),
            (f"aggregated ({FLUSH_INTERVAL} s)", merged, writes),
        ):
            per = spent / count
            verdict = "PASS" if per <= SERVER_TIME_TARGET * base_per else "BELOW TARGET"
            if label == "per-call writes":
                verdict = "(no target)"
            rows.append(
                (
                    f"server us/write, {label}",
                    f"{base_per:.3f}",
                    f"{per:.4f}",
                    per / base_per,
                    verdict,
                )
            )
        total = RealtimeMetrics.from_url(url, prefix=prefix).get_counter(
            "bench_hot", {"route": "/api/items"}
        )
        assert total == direct_writes + writes, (total, direct_writes + writes)

        seconds = options.seconds
        raw = sustained(_raw_worker, (url, f"{prefix}raw"), seconds)
        aggregated = sustained(_aggregated_worker, (url, prefix), seconds)
        stored = RealtimeMetrics.from_url(url, prefix=prefix).get_counter(
            "bench_sustained", {"route": "/api/items"}
        )
        exact = "exact" if stored == aggregated else f"NOT EXACT ({stored} in Redis)"
        ratio = aggregated / raw
        rows.append(
            (
                f"writes/s, {PROCESSES} processes",
                f"{raw / seconds:,.0f}",
                f"{aggregated / seconds:,.0f}",
                ratio,
                ("PASS" if ratio >= THROUGHPUT_TARGET and stored == aggregated else "BELOW TARGET")
                + f" ({exact})",
            )
        )
        client.close()

    print(
        f"Realtime at scale (private redis-server; {PROCESSES} processes; {os.cpu_count()} cores)"
    )
    header = f"{'figure':<42} {'baseline':>10} {'ours':>10} {'ratio':>7}  result"
    print(header)
    print("-" * len(header))
    for name, baseline, ours, ratio, verdict in rows:
        print(f"{name:<42} {baseline:>10} {ours:>10} {ratio:>7.3f}  {verdict}")
    print(
        "server time: Redis INFO commandstats usec per logical write vs per bare INCRBY "
        f"(targets: aggregated <= {SERVER_TIME_TARGET}x); throughput: logical writes per second "
        f"vs raw INCR (target >= {THROUGHPUT_TARGET}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
