"""Custom metrics: compile time per definition, and compiled vs hand-written query run time.

Run: .venv/bin/python benchmarks/bench_custom_metrics.py [--rows N] [--pg-rows N] [--repeat N]

Targets (issue 7): compiling a definition takes at most 5 ms (median of 200 compiles); the
compiled query runs within 1.2x of the same query written by hand, measured side by side in
this run (alternating ABBA, median of --repeat runs) on DuckDB and, when reachable, PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_metrics import compile_metric, load_examples

COMPILE_TARGET_MS = 5.0
RATIO_TARGET = 1.2
SCHEMA = "bench_cm"
PERIOD = ("2025-01-01", "2025-03-01")

DEFINITIONS: dict[str, dict[str, Any]] = {
    # One total over the period (without their time_grain, which would answer per period).
    "renewal_rate_by_industry": {
        **dict(load_examples()["license_renewal_rate_by_industry"]),
        "time_grain": None,
    },
    "active_users_30d": {**dict(load_examples()["active_users_30d"]), "time_grain": None},
    "revenue_by_type_where": {
        "name": "revenue by type",
        "metric_type": "SUM",
        "data_source": "events",
        "calculation_formula": "revenue_cents",
        "dimensions": ["event_type", "entity_type"],
        "where": "revenue_cents > 100 and actor_id is not null",
    },
    "p95_revenue_by_category": {
        "name": "p95",
        "metric_type": "PERCENTILE",
        "data_source": "events",
        "calculation_formula": "revenue_cents",
        "percentile": 0.95,
        "dimensions": ["properties.category"],
        "filters": {"event_type": ["purchase", "license_renewal"]},
    },
}


def hand_written(name: str, dialect: str, s: str) -> str:
    """The same queries as an analyst would write them, literals inline."""
    num = "numeric" if dialect == "postgres" else "double"
    lo, hi = "timestamptz '2025-01-01 00:00:00+00'", "timestamptz '2025-03-01 00:00:00+00'"
    lookback = "timestamptz '2025-01-30 00:00:00+00'"
    percentile = (
        "percentile_cont(0.95) within group (order by revenue_cents::double precision)"
        if dialect == "postgres"
        else "quantile_cont(revenue_cents::double, 0.95)"
    )
    return {
        "renewal_rate_by_industry": f"""
            select properties ->> 'industry' as industry,
                   cast(count(distinct case when event_type = 'license_renewal'
                        then entity_id end) as {num})
                   / nullif(count(distinct entity_id), 0) as value
            from {s}.stg_events
            where entity_type = 'license' and occurred_at >= {lo} and occurred_at < {hi}
            group by properties ->> 'industry'""",
        "active_users_30d": f"""
            select count(distinct actor_id) as value from {s}.stg_events
            where occurred_at >= {lookback} and occurred_at < {hi}""",
        "revenue_by_type_where": f"""
            select event_type, entity_type, sum(revenue_cents) as value from {s}.stg_events
            where revenue_cents > 100 and actor_id is not null
              and occurred_at >= {lo} and occurred_at < {hi}
            group by event_type, entity_type""",
        "p95_revenue_by_category": f"""
            select properties ->> 'category' as category, {percentile} as value
            from {s}.stg_events
            where event_type in ('purchase', 'license_renewal')
              and occurred_at >= {lo} and occurred_at < {hi}
            group by properties ->> 'category'""",
    }[name]


EVENTS_SELECT = {
    "duckdb": """select 'e' || i as event_id,
        timestamptz '2025-01-01 00:00:00+00' + to_seconds((i * 7919) % 7776000) as occurred_at,
        date '2025-01-01' as event_date,
        (['page_view', 'click', 'purchase', 'license_renewal', 'asset_used'])[1 + i % 5]
          as event_type,
        case when i % 7 = 0 then null else 'u' || (i * 31 % 50000) end as actor_id,
        (['asset', 'license', 'org'])[1 + (i // 5) % 3] as entity_type,
        'x' || (i * 13 % 20000) as entity_id,
        case when i % 3 = 0 then null else (i * 37 % 100000)::bigint end as revenue_cents,
        json_object('industry', (['retail', 'finance', 'health', 'energy'])[1 + i % 4],
                    'category', (['laptop', 'phone', 'server'])[1 + (i // 3) % 3])
          as properties,
        timestamptz '2025-01-01 00:00:00+00' as ingested_at
        from range({rows}) t(i)""",
    "postgres": """select 'e' || i as event_id,
        timestamptz '2025-01-01 00:00:00+00' + ((i * 7919) % 7776000) * interval '1 second'
          as occurred_at,
        date '2025-01-01' as event_date,
        (array['page_view', 'click', 'purchase', 'license_renewal', 'asset_used'])[1 + i % 5]
          as event_type,
        case when i % 7 = 0 then null else 'u' || (i * 31 % 50000) end as actor_id,
        (array['asset', 'license', 'org'])[1 + (i / 5) % 3] as entity_type,
        'x' || (i * 13 % 20000) as entity_id,
        case when i % 3 = 0 then null else (i * 37 % 100000)::bigint end as revenue_cents,
        jsonb_build_object('industry', (array['retail', 'finance', 'health', 'energy'])[1 + i % 4],
                           'category', (array['laptop', 'phone', 'server'])[1 + (i / 3) % 3])
          as properties,
        timestamptz '2025-01-01 00:00:00+00' as ingested_at
        from generate_series(0::bigint, {rows} - 1) i""",
}


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def bench_compile(repeat: int) -> list[tuple[str, str, float, str]]:
    rows = []
    for name, definition in DEFINITIONS.items():
        for dialect in ("postgres", "duckdb"):
            ms = median_ms(
                lambda d=definition, di=dialect: compile_metric(d, di, *PERIOD, schema=SCHEMA),
                repeat,
            )
            verdict = "PASS" if ms <= COMPILE_TARGET_MS else "BELOW TARGET"
            rows.append((name, dialect, ms, verdict))
    return rows


def side_by_side(
    run: Callable[[str, dict[str, Any]], list[tuple[Any, ...]]], dialect: str, repeat: int
) -> list[tuple[str, float, float, float, str]]:
    """Compiled vs hand-written, alternating runs, after one warm-up each; results compared."""
    out = []
    for name, definition in DEFINITIONS.items():
        compiled = compile_metric(definition, dialect, *PERIOD, schema=SCHEMA)
        hand = hand_written(name, dialect, SCHEMA)
        a = sorted(run(compiled.sql, compiled.params), key=repr)
        b = sorted(run(hand, {}), key=repr)
        assert len(a) == len(b) and all(
            abs(float(x[-1] or 0) - float(y[-1] or 0)) <= 1e-6 * max(1.0, abs(float(y[-1] or 0)))
            for x, y in zip(a, b, strict=True)
        ), f"{name}: compiled and hand-written results differ"
        compiled_times: list[float] = []
        hand_times: list[float] = []
        timed = [
            (compiled_times, lambda c=compiled: run(c.sql, c.params)),
            (hand_times, lambda h=hand: run(h, {})),
        ]
        for i in range(repeat):  # ABBA order, so neither side always runs first
            for times, fn in timed if i % 2 == 0 else timed[::-1]:
                times.append(median_ms(fn, 1))
        c, h = statistics.median(compiled_times), statistics.median(hand_times)
        ratio = c / h
        out.append((name, c, h, ratio, "PASS" if ratio <= RATIO_TARGET else "BELOW TARGET"))
    return out


def bench_duckdb(rows: int, repeat: int) -> list[tuple[str, float, float, float, str]]:
    import duckdb

    conn = duckdb.connect()
    conn.execute("set timezone = 'UTC'")
    conn.execute(f"create schema {SCHEMA}")
    conn.execute(
        f"create table {SCHEMA}.stg_events as " + EVENTS_SELECT["duckdb"].format(rows=rows)
    )

    def run(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return conn.execute(sql, params or None).fetchall()

    try:
        return side_by_side(run, "duckdb", repeat)
    finally:
        conn.close()


@contextmanager
def postgres_database() -> Iterator[Any]:
    import psycopg2

    admin = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": os.environ.get("PGDATABASE", "postgres"),
    }
    if os.environ.get("PGPASSWORD"):
        admin["password"] = os.environ["PGPASSWORD"]
    root = psycopg2.connect(connect_timeout=3, **admin)
    root.autocommit = True
    name = f"bench_cm_{uuid.uuid4().hex[:8]}"
    with root.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        conn = psycopg2.connect(options="-c timezone=UTC", **{**admin, "dbname": name})
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()
    finally:
        with root.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        root.close()


def bench_postgres(rows: int, repeat: int) -> list[tuple[str, float, float, float, str]] | str:
    try:
        import psycopg2

        context = postgres_database()
        conn = context.__enter__()
    except (ImportError, psycopg2.Error) as error:
        return f"PostgreSQL not reachable ({str(error).strip()}); skipped"
    try:
        with conn.cursor() as cur:
            cur.execute(f"create schema {SCHEMA}")
            cur.execute(
                f"create table {SCHEMA}.stg_events as "
                + EVENTS_SELECT["postgres"].format(rows=rows)
            )
            cur.execute(f"analyze {SCHEMA}.stg_events")

        def run(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                return list(cur.fetchall())

        return side_by_side(run, "postgres", repeat)
    finally:
        context.__exit__(None, None, None)


def table(headers: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000, help="DuckDB events")
    parser.add_argument("--pg-rows", type=int, default=500_000, help="PostgreSQL events")
    parser.add_argument("--repeat", type=int, default=11, help="timed runs per query")
    parser.add_argument("--compiles", type=int, default=200, help="compiles per definition")
    args = parser.parse_args(argv)

    compile_rows = bench_compile(args.compiles)
    print(
        f"Compile time per definition (median of {args.compiles}; target <= "
        f"{COMPILE_TARGET_MS:g} ms)"
    )
    print(table(["definition", "dialect", "median ms", "result"], compile_rows))

    failures = sum(r[-1] != "PASS" for r in compile_rows)
    runs: list[tuple[str, Callable[[], Any]]] = [
        (f"DuckDB, {args.rows:,} events", lambda: bench_duckdb(args.rows, args.repeat)),
        (
            f"PostgreSQL, {args.pg_rows:,} events",
            lambda: bench_postgres(args.pg_rows, args.repeat),
        ),
    ]
    for label, bench in runs:
        result = bench()
        print(
            f"\nCompiled vs hand-written query, {label} (median of {args.repeat}, ABBA "
            f"alternating; target ratio <= {RATIO_TARGET:g})"
        )
        if isinstance(result, str):
            print(result)
            continue
        print(table(["definition", "compiled ms", "hand ms", "ratio", "result"], result))
        failures += sum(r[-1] != "PASS" for r in result)
    print(f"\n{'all targets met' if not failures else f'{failures} below target'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
