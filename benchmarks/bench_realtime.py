"""Per-call cost of RealtimeMetrics writes against bare redis-py INCRs on the same server.

    .venv/bin/python benchmarks/bench_realtime.py [--calls N]

Ratios are "baseline time / our time" (higher is better; 1.0 = as fast as a bare INCR):
each write type against one INCR round trip (target >= 0.7), and a batch of writes against a
pipeline of as many INCRs (target >= 0.5). Baseline and candidate calls alternate one by one
and the medians count, so background load affects both alike. Uses REDIS_URL and a private
key prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from redis.utils import HIREDIS_AVAILABLE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.metrics import RealtimeMetrics

SINGLE_TARGET = 0.7
BATCH_TARGET = 0.5
BATCH_SIZE = 100


def _compare(
    baseline: Callable[[], object], candidate: Callable[[], object], calls: int
) -> tuple[float, float]:
    """Median seconds per call of baseline and candidate, timed call by call in alternation
    (order flipped every call), so both see the same load on a busy machine."""
    for _ in range(max(20, calls // 20)):  # warm up connections, scripts, caches
        baseline()
        candidate()
    clock = time.perf_counter_ns
    base: list[int] = []
    cand: list[int] = []
    for i in range(calls):
        swapped = bool(i & 1)
        first, second = (baseline, candidate) if swapped else (candidate, baseline)
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        base.append(t1 - t0 if swapped else t2 - t1)
        cand.append(t2 - t1 if swapped else t1 - t0)
    return statistics.median(base) / 1e9, statistics.median(cand) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per write type")
    options = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    bare = redis.Redis.from_url(url)
    rt = RealtimeMetrics.from_url(url, prefix=prefix, fail_open=False)
    labels = {"route": "/api/items", "method": "GET"}
    incr_key = f"{prefix}bare"
    calls = options.calls
    counter = iter(range(10**9))

    def bare_incr() -> object:
        return bare.incr(incr_key)

    def bare_pipeline() -> object:
        pipe = bare.pipeline(transaction=False)
        for _ in range(BATCH_SIZE):
            pipe.incr(incr_key)
        return pipe.execute()

    # A different series for every write of a batch (25 routes x 4 kinds), like a request
    # handler flushing its metrics: nothing in the batch can be merged.
    routes = [{"route": f"/api/items/{i}", "method": "GET"} for i in range(BATCH_SIZE // 4)]

    def batch_mixed() -> object:
        with rt.batch() as b:
            for i, route in enumerate(routes):
                b.increment_counter("bench_requests", 1, route)
                b.set_gauge("bench_queue_depth", i, route)
                b.add_to_histogram("bench_latency_ms", 1.0 + i * 3.7, 60, route)
                b.track_rate("bench_rps", 60, route)
        return b.results

    singles: list[tuple[str, Callable[[], object]]] = [
        ("increment_counter", lambda: rt.increment_counter("bench_requests", 1, labels)),
        ("set_gauge", lambda: rt.set_gauge("bench_queue_depth", next(counter), labels)),
        (
            "add_to_histogram",
            lambda: rt.add_to_histogram("bench_latency_ms", 1.0 + next(counter) % 997, 60, labels),
        ),
        ("track_rate", lambda: rt.track_rate("bench_rps", 60, labels)),
    ]
    rows: list[tuple[str, float, float, float, float]] = []
    try:
        for name, function in singles:
            base, ours = _compare(bare_incr, function, calls)
            rows.append((name, base, ours, base / ours, SINGLE_TARGET))
        base, ours = _compare(bare_pipeline, batch_mixed, max(50, calls // 10))
        rows.append(
            (
                f"batch of {BATCH_SIZE} (mixed)",
                base / BATCH_SIZE,
                ours / BATCH_SIZE,
                base / ours,
                BATCH_TARGET,
            )
        )
    finally:
        keys = list(bare.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            bare.delete(*keys[start : start + 500])
        bare.close()
        rt.close()

    print(f"Realtime writes vs bare redis-py ({url}; median of {calls} interleaved calls)")
    header = f"{'write':<24} {'baseline us':>12} {'ours us':>10} {'ratio':>7} {'target':>7}  result"
    print(f"redis-py {redis.__version__}, parser: {'hiredis' if HIREDIS_AVAILABLE else 'Python'}")
    print(header)
    print("-" * len(header))
    for name, base, ours, ratio, target in rows:
        verdict = "PASS" if ratio >= target else "BELOW TARGET"
        print(
            f"{name:<24} {base * 1e6:>12.1f} {ours * 1e6:>10.1f} {ratio:>7.3f} {target:>7.2f}"
            f"  {verdict}"
        )
    print("baseline: one INCR per call; for the batch, one pipelined INCR per write")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
