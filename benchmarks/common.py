"""Helpers shared by the benchmarks: scratch warehouses, timing, and the result table."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from warehouse.config import environment


def median_seconds(action: Callable[[], object], repeat: int = 3) -> float:
    """Median wall-clock seconds of `repeat` runs of action."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


@contextmanager
def scratch_postgres(prefix: str = "metrics_bench") -> Iterator[str]:
    """A throwaway PostgreSQL database; PGDATABASE points at it while inside."""
    admin = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "dbname": os.environ.get("PGDATABASE", "postgres"),
    }
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(**admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        with environment(
            {
                "PGDATABASE": name,
                "PGHOST": admin["host"],
                "PGPORT": admin["port"],
                "PGUSER": admin["user"],
                "METRICS_TARGET": "postgres",
            }
        ):
            yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        conn.close()


@contextmanager
def scratch_duckdb(directory: Path) -> Iterator[Path]:
    """A throwaway DuckDB file; METRICS_DUCKDB_PATH points at it while inside."""
    path = directory / f"bench_{uuid.uuid4().hex[:8]}.duckdb"
    try:
        with environment({"METRICS_DUCKDB_PATH": str(path), "METRICS_TARGET": "duckdb"}):
            yield path
    finally:
        for leftover in (path, path.with_suffix(".duckdb.wal")):
            leftover.unlink(missing_ok=True)


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """Rows of (measure, value, target, verdict)."""
    print(f"\n{title}")
    widths = [
        max(len(r[i]) for r in [("measure", "value", "target", "verdict"), *rows]) for i in range(4)
    ]
    header = ("measure", "value", "target", "verdict")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
