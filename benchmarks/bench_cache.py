"""Benchmark of the metrics cache, as ratios against baselines measured in the same run.

1. A cache hit (`MetricsCache.get_or_compute`: one MGET of the entry and the namespace's stamp,
   valid when this process proved the entry under that stamp, then decoded) against a bare
   redis-py GET of the very same stored bytes, on a plain redis-py client (no socket timeout).
   Target: <= 1.5x. The cache's client is the one `MetricsCache.from_url` makes: redis-py's
   own pool and socket timeouts, nothing bypassed. Repeated hits of one entry are served from the
   cache's decoded memo (serving/memo.py); the rows marked "memo off" decode every
   hit, as the first hit of a new or changed entry does. The row "proven again" drops the
   process's proofs before each hit, as an invalidation anywhere in the namespace does once per
   entry: the hit then also reads the versions of the entry's tags (a second MGET).
2. A dashboard bundle served from the cache against computing it from a DuckDB warehouse with
   ~100k daily rollup rows (plus weekly and monthly rollups). Target: >= 20x faster.

Run: ``.venv/bin/python benchmarks/bench_cache.py`` (Redis from REDIS_URL). Both sides are
timed in many short rounds, each round one block of calls of each side back to back (the order
alternating); a hit's ratio is the median of the rounds' ratios. This machine's loopback
switches between a fast and a slow state (about 35 and 115 us a round trip), and blocks
adjacent in time share the state, which the best round of each side taken apart did not.
Every key it writes is deleted at the end. ``--strict`` exits 1 when a figure is below target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, cast

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from serving.cache import MetricsCache
from serving.reader import MetricsReader
from serving.serialization import loads
from warehouse import WarehouseConfig, connect

TODAY = date(2025, 3, 1)


def _per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call of ``fn`` over ``calls`` calls."""
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def _interleaved(
    ours: Callable[[], object], base: Callable[[], object], calls: int, rounds: int
) -> tuple[float, float, float]:
    """Median per-call seconds of each over many short rounds, and the median of the rounds'
    ratios: each round times a block of each side back to back, so both see the same
    conditions (load, the loopback's state), and the median drops the rounds a change split.
    """
    for _ in range(max(1, calls // 10)):  # warm connections, script cache, memo tables
        ours()
        base()
    o_times, b_times = [], []
    for i in range(rounds):
        first, second = (ours, base) if i % 2 == 0 else (base, ours)
        t1 = _per_call(first, calls)
        t2 = _per_call(second, calls)
        o, b = (t1, t2) if first is ours else (t2, t1)
        o_times.append(o)
        b_times.append(b)
    ratios = [o / b for o, b in zip(o_times, b_times, strict=True)]
    return statistics.median(o_times), statistics.median(b_times), statistics.median(ratios)


def build_warehouse(path: Path) -> int:
    """A DuckDB file of rollups with the marts' columns: ~100k daily, weekly and monthly rows."""
    os.environ["METRICS_TARGET"] = "duckdb"
    os.environ["METRICS_DUCKDB_PATH"] = str(path)
    os.environ["METRICS_SCHEMA"] = "metrics"
    os.environ["METRICS_WEEK_START"] = "monday"
    config = WarehouseConfig()
    with connect(config) as wh:
        wh.execute("create schema if not exists metrics")
        wh.execute(
            """
            create table metrics.daily_metrics as
            with base as (
                select g::date as metric_date, 'a' || e as entity_id, t as event_type,
                       (abs(hash(g, e, t)) % 500 + 1)::bigint as n
                from generate_series(date '2024-06-01', date '2025-02-28', interval 1 day) s(g),
                     range(0, 100) r(e),
                     unnest(['page_view', 'click', 'purchase']) u(t)
            )
            select metric_date, 'asset' as entity_type, entity_id, event_type,
                   n as event_count, (n // 3 + 1)::bigint as unique_actors,
                   (case when event_type = 'purchase' then n * 199 else 0 end)::bigint
                       as revenue_cents
            from base
            union all
            select metric_date, 'asset', entity_id, '*', sum(n)::bigint,
                   (max(n) // 3 + 1)::bigint,
                   sum(case when event_type = 'purchase' then n * 199 else 0 end)::bigint
            from base group by all
            """
        )
        for table, period, days in (
            ("weekly_metrics", "date_trunc('week', metric_date)::date", "7"),
            ("monthly_metrics", "date_trunc('month', metric_date)::date", "days_in_month"),
        ):
            column = "week_start" if table == "weekly_metrics" else "month_start"
            days_expr = ""
            if table == "monthly_metrics":
                days_expr = (
                    f"datediff('day', {column}, {column} + interval 1 month)::int "
                    "as days_in_month, "
                )
            wh.execute(
                f"""
                create table metrics.{table} as
                with agg as (
                    select {period} as {column}, entity_type, entity_id, event_type,
                           sum(event_count)::bigint as event_count,
                           max(unique_actors)::bigint as unique_actors,
                           sum(revenue_cents)::bigint as revenue_cents,
                           count(*)::int as active_days
                    from metrics.daily_metrics group by all
                ), shaped as (
                    select *, {days_expr}
                           lag(event_count) over w as prev_event_count,
                           lag(unique_actors) over w as prev_unique_actors,
                           lag(revenue_cents) over w as prev_revenue_cents
                    from agg
                    window w as (partition by entity_type, entity_id, event_type order by {column})
                )
                select {column}, entity_type, entity_id, event_type, event_count, unique_actors,
                       revenue_cents, {"days_in_month, " if days_expr else ""}active_days,
                       (event_count / {days})::numeric(24,6) as avg_daily_events,
                       (revenue_cents / {days})::numeric(24,6) as avg_daily_revenue_cents,
                       prev_event_count, prev_unique_actors, prev_revenue_cents,
                       round(100 * (event_count - prev_event_count)
                             / nullif(prev_event_count, 0), 2)::numeric(20,2)
                           as event_count_growth_pct,
                       round(100 * (unique_actors - prev_unique_actors)
                             / nullif(prev_unique_actors, 0), 2)::numeric(20,2)
                           as unique_actors_growth_pct,
                       round(100 * (revenue_cents - prev_revenue_cents)
                             / nullif(prev_revenue_cents, 0), 2)::numeric(20,2)
                           as revenue_growth_pct
                from shaped
                """
            )
        rows = wh.query("select count(*) from metrics.daily_metrics")[0][0]
    return int(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per timed round")
    parser.add_argument("--rounds", type=int, default=60, help="alternating rounds")
    parser.add_argument("--strict", action="store_true", help="exit 1 if below a target")
    args = parser.parse_args()

    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    namespace = f"bench:cache:{uuid.uuid4().hex[:8]}"
    bare = redis.Redis.from_url(url)  # a plain redis-py client, as an application would make
    try:
        bare.ping()
    except redis.RedisError as error:
        print(f"Redis is not reachable at {url}: {error}")
        return 2
    cache = MetricsCache.from_url(url, namespace=namespace)
    # The same entries, read without the decoded memo: every hit decodes its JSON.
    decoding = MetricsCache.from_url(url, namespace=namespace, decoded_memo_bytes=0)
    results: list[tuple[str, str, str, float, str, bool]] = []
    decode_us: list[float] = []

    def hit_row(
        label: str,
        key: str,
        value: Any,
        tags: list[str],
        raw: bool = False,
        memo: bool = True,
        prove: bool = False,
    ) -> None:
        cache.get_or_compute(key, lambda: value, tags=tags)
        stored = cast("bytes | None", bare.get(cache.entry_key(key)))
        assert stored is not None
        bare_key = f"{namespace}:bare"
        bare.set(bare_key, stored)
        reader_cache = cache if memo else decoding
        read = reader_cache.get_or_compute_json if raw else reader_cache.get_or_compute

        def ours() -> object:
            if prove:  # as after an invalidation elsewhere: this process proves it again
                reader_cache._proofs.clear()
            return read(key, _never, tags=tags)

        def base() -> object:
            return bare.get(bare_key)

        o, b, ratio = _interleaved(ours, base, args.calls, args.rounds)
        if not raw and memo and not prove:
            body = stored.partition(b"\n")[2]
            decode = min(_per_call(lambda: loads(body), args.calls) for _ in range(10))
            decode_us.append(decode * 1e6)
        label = f"{label} ({len(stored):,} B, {len(tags)} tags)"
        results.append(
            (label, f"{o * 1e6:.1f} us", f"{b * 1e6:.1f} us GET", ratio, "<= 1.5x", ratio <= 1.5)
        )

    try:
        with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp:
            rows = build_warehouse(Path(tmp) / "warehouse.duckdb")
            reader = MetricsReader(cache, today=TODAY)
            day = reader.period_entry("daily", "asset", "a7", date(2025, 2, 20))
            week = reader.period_entry("weekly", "asset", "a7", date(2025, 2, 17))
            bundle = reader.dashboard_entry("u1", "asset", "a7", "30d")
            for label, entry, raw, memo, prove in (
                ("hit: one entity-day (period entry)", day, False, True, False),
                ("hit: one entity-week, Decimals (period entry)", week, False, True, False),
                ("hit: one entity-week, Decimals, memo off", week, False, False, False),
                ("hit: 30d dashboard bundle", bundle, False, True, False),
                ("hit: 30d dashboard bundle, memo off", bundle, False, False, False),
                ("hit: 30d dashboard bundle as JSON bytes", bundle, True, True, False),
                ("hit: 30d bundle proven again (2 MGETs)", bundle, False, True, True),
            ):
                hit_row(label, entry["key"], entry["compute"](), entry["tags"], raw, memo, prove)

            # Dashboard: computed from the warehouse vs served from the cache.
            compute = reader.dashboard_entry("u1", "asset", "a42", "30d")["compute"]
            cache.reset_stats()
            reader.get_dashboard("u1", "asset", "a42", "30d")

            def cached() -> object:
                return reader.get_dashboard("u1", "asset", "a42", "30d")

            computed_s = min(_per_call(compute, 3) for _ in range(5))
            cached_s = min(_per_call(cached, args.calls) for _ in range(10))
            stats = cache.get_stats()
            assert stats["misses"] == 1, stats  # every timed cached call was a hit
            speedup = computed_s / cached_s
            results.append(
                (
                    f"dashboard 30d: cached vs computed ({rows:,} daily rows)",
                    f"{cached_s * 1e3:.3f} ms",
                    f"{computed_s * 1e3:.2f} ms computed",
                    speedup,
                    ">= 20x",
                    speedup >= 20,
                )
            )
    finally:
        removed = 0
        for key in bare.scan_iter(match=f"*{namespace}:*", count=1000):
            removed += cast(int, bare.delete(key))
        cache.close()
        decoding.close()
        bare.close()

    from redis.utils import HIREDIS_AVAILABLE

    parser_name = "hiredis" if HIREDIS_AVAILABLE else "pure-Python"
    print(
        f"\nredis-py {redis.__version__}, {parser_name} reply parser, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; medians over {args.rounds} rounds of "
        f"{args.calls} calls of each side back to back"
    )
    print(f"{'benchmark':<66} {'ours':>11} {'baseline':>20} {'ratio':>8} {'target':>8}  result")
    print("-" * 124)
    ok = True
    for label, ours_s, base_s, ratio, target, passed in results:
        ok &= passed
        verdict = "PASS" if passed else "BELOW TARGET"
        print(f"{label:<66} {ours_s:>11} {base_s:>20} {ratio:>7.2f}x {target:>8}  {verdict}")
    print(
        "\nJSON decoding alone (no Redis) of the three decoded hits: "
        + ", ".join(f"{us:.1f} us" for us in decode_us)
    )
    print(f"(cleaned up {removed} Redis keys under {namespace})")
    return 0 if ok or not args.strict else 1


def _never() -> Any:
    raise AssertionError("benchmark hit path recomputed")


if __name__ == "__main__":
    sys.exit(main())
