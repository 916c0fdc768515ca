"""`make bench`: run every benchmark, print its figures, and record them in docs/benchmarks.md.

Each benchmark measures its own baseline in the same run and prints ratios, so the figures
stay comparable on a shared, noisy machine. Pass names to run a subset:
`.venv/bin/python benchmarks/run_all.py realtime cache`.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# name -> (command, what it measures)
BENCHMARKS: dict[str, tuple[list[str], str]] = {
    "incremental-postgres": (
        [PY, "benchmarks/bench_incremental.py", "--target", "postgres"],
        "one-day window re-run vs full build on a 2M-event PostgreSQL history; "
        "one-day re-run with 120 vs 30 days of history",
    ),
    "incremental-duckdb": (
        [PY, "benchmarks/bench_incremental.py", "--target", "duckdb", "--skip-full"],
        "one-day re-run with 120 vs 30 days of history on DuckDB",
    ),
    "backfill": (
        [PY, "benchmarks/bench_backfill.py"],
        "Dagster backfill of 10M events vs the same aggregation as plain SQL "
        "(back-to-back pairs: the median of three on DuckDB, one on PostgreSQL)",
    ),
    "spark": (
        [PY, "benchmarks/bench_spark.py"],
        "dbt full build of 2M events on a local Spark session vs the same aggregation as plain "
        "Spark SQL; one-day window re-run vs the full build",
    ),
    "realtime": (
        [PY, "benchmarks/bench_realtime.py"],
        "realtime writes vs bare redis-py INCR; batched writes vs pipelined INCRs",
    ),
    "realtime-scale": (
        [PY, "benchmarks/bench_realtime_scale.py"],
        "Redis server time per logical write and sustained writes/s from 8 processes, with and "
        "without client-side aggregation",
    ),
    "cache": (
        [PY, "benchmarks/bench_cache.py"],
        "cache hit vs bare GET; dashboard from cache vs computed",
    ),
    "http": (
        [PY, "benchmarks/bench_http.py"],
        "HTTP API at 32 connections (wrk): cached dashboard and rollup page vs /healthz",
    ),
    "custom-metrics": (
        [PY, "benchmarks/bench_custom_metrics.py"],
        "compile time per definition; compiled query vs hand-written SQL",
    ),
    "product-analytics": (
        [PY, "benchmarks/bench_product_analytics.py"],
        "custom-metric FUNNEL and RETENTION vs hand-written SQL over 2M events; a 90-day COUNT "
        "answered from daily_metrics vs from the events",
    ),
}


def _machine() -> list[str]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "n/a"

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    memory = run("free", "-h").splitlines()[1].split()[1] if run("free", "-h") else "n/a"
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} cores ({cpu}), {memory} memory, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}; {run('psql', '--version')}; "
        f"{run('redis-server', '--version').split(' sha=')[0]}",
    ]


def main(argv: list[str] | None = None) -> int:
    chosen = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    sections: list[str] = []
    failed = []
    below: list[str] = []  # result lines that missed their target, for the summary
    for name in chosen:
        command, what = BENCHMARKS[name]
        if not (ROOT / command[1]).exists():
            print(f"\n=== {name}: {command[1]} is not there yet; skipped")
            continue
        print(f"\n=== {name}: {what}", flush=True)
        began = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        print(proc.stdout, end="")
        below += [
            f"{name}: {' '.join(line.split())}"
            for line in proc.stdout.splitlines()
            if "BELOW TARGET" in line
        ]
        if proc.returncode != 0:
            failed.append(name)
            print(proc.stderr[-3000:], file=sys.stderr)
        shown = " ".join(["python", *command[1:]])
        sections += [
            f"## {name}",
            "",
            f"{what}. Command: `{shown}` ({time.perf_counter() - began:.0f}s"
            f"{', FAILED' if proc.returncode else ''}).",
            "",
            "```",
            proc.stdout.strip() or "(no output)",
            "```",
            "",
        ]
    summary = (
        ["Below target in this run:", "", *(f"- {line}" for line in below)]
        if below
        else ["Every figure met its target in this run."]
    )
    print("\n" + "\n".join(summary))
    if set(chosen) == set(BENCHMARKS):
        doc = [
            "# Benchmarks",
            "",
            "Written by `make bench` (benchmarks/run_all.py). Every figure is a ratio against a",
            "baseline measured in the same run on the same machine.",
            "",
            *_machine(),
            "",
            *summary,
            "",
            *sections,
        ]
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "benchmarks.md").write_text("\n".join(doc))
        print("\nrecorded in docs/benchmarks.md")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
