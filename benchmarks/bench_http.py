"""HTTP API under load: `metrics serve` in its own process on PostgreSQL and Redis, driven by a
real HTTP load generator (wrk; an asyncio client where wrk is missing) at 32 connections.

Throughput of a cached dashboard and of a rollup page is reported as a ratio of the same
server's `/healthz` (measured before and after, averaged), with p50/p99 latency and errors.
Target: the cached dashboard at least 0.5x `/healthz`, zero errors everywhere.

The server process's CPU time per request (Linux /proc) is reported beside it: on a machine
shared with other work, throughput follows the neighbours' load, while the ratio of CPU per
request (healthz / route) stays close to what the throughput ratio is on an idle machine.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from benchmarks.common import print_table, scratch_postgres
from serving.http.tokens import TokenStore
from tests.http.http_support import create_rollup_tables, daily_rows, insert_rows
from warehouse import WarehouseConfig, connect

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 32
SECONDS = 8
TARGET_CACHED = 0.5


@dataclass
class Load:
    """What one load run measured."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    tool: str
    cpu_us: float | None = None  # the server process's CPU time per request


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    unit = re.search(r"[a-z]+$", text)
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit.group(0) if unit else "s"]
    return value * factor


def _wrk(wrk: str, url: str, token: str | None) -> Load:
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    out = subprocess.run(
        [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", *headers, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=SECONDS + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Load(rps, p50, p99, errors, total, "wrk")


async def _asyncio_load(url: str, token: str | None) -> Load:
    """A plain asyncio HTTP/1.1 keep-alive client: CONNECTIONS loops for SECONDS."""
    host, port_path = url.split("//", 1)[1].split(":", 1)
    port, _, path = port_path.partition("/")
    request = (
        f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n"
        + (f"Authorization: Bearer {token}\r\n" if token else "")
        + "\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + SECONDS

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < stop:
            began = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if b" 200 " not in status:
                errors += 1
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return Load(
        len(ordered) / elapsed,
        ordered[len(ordered) // 2] * 1000,
        ordered[int(len(ordered) * 0.99)] * 1000,
        errors,
        len(ordered),
        "asyncio client",
    )


def _wrk_path() -> str | None:
    """Debian's wrk, installed when missing and this runs as root; None if it cannot be had."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(command, env=env, check=False, capture_output=True)
        found = shutil.which("wrk")
    return found


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of process ``pid`` so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, token: str | None, server_pid: int) -> Load:
    """Drive ``url`` for SECONDS; also the CPU the server spent per request meanwhile."""
    wrk = _wrk_path()
    cpu_before = _cpu_seconds(server_pid)
    result = _wrk(wrk, url, token) if wrk else asyncio.run(_asyncio_load(url, token))
    cpu_after = _cpu_seconds(server_pid)
    if cpu_before is not None and cpu_after is not None and result.requests:
        result.cpu_us = (cpu_after - cpu_before) / result.requests * 1e6
    return result


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("metrics serve exited during start-up")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("metrics serve did not start")


def _clean_redis(namespace: str) -> None:
    """Delete the keys the server wrote under the benchmark's cache namespace."""
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        for key in client.scan_iter(match=f"*{namespace}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


def main() -> int:
    namespace = f"bench:http:{uuid.uuid4().hex[:8]}"
    with scratch_postgres("metrics_bench_http"):
        config = WarehouseConfig(target="postgres", schema="metrics")
        today = datetime.now(UTC).date()
        with connect(config) as wh:
            create_rollup_tables(wh)
            insert_rows(wh, "daily_metrics", daily_rows(today - timedelta(days=120), 120))
            _, token = TokenStore(wh).create("bench", "perf", "acme")
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "METRICS_CACHE_NAMESPACE": namespace, "METRICS_SCHEMA": "metrics"}
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_until_up(base, process)
            dashboard = f"{base}/v1/dashboards/30d?entity_type=asset&entity_id=a1"
            page = f"{base}/v1/metrics/daily?entity_type=asset&entity_id=a1&limit=100"
            request = urllib.request.Request(
                dashboard, headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=30) as reply:  # warm the cache
                assert reply.status == 200
            before = load(f"{base}/healthz", None, process.pid)
            cached = load(dashboard, token, process.pid)
            rollup = load(page, token, process.pid)
            after = load(f"{base}/healthz", None, process.pid)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
            _clean_redis(namespace)
    healthz = statistics.mean([before.requests_per_second, after.requests_per_second])
    healthz_cpu = (
        statistics.mean([before.cpu_us, after.cpu_us])
        if before.cpu_us is not None and after.cpu_us is not None
        else None
    )
    rows = []
    for name, result, target in (
        ("/healthz (baseline)", before, None),
        ("cached dashboard 30d", cached, TARGET_CACHED),
        ("rollup page (100 rows, PostgreSQL)", rollup, None),
    ):
        ratio = result.requests_per_second / healthz
        ok = result.errors == 0 and (target is None or ratio >= target)
        cpu = ""
        if result.cpu_us is not None and healthz_cpu is not None:
            cpu = f"; server CPU {result.cpu_us:.0f} us/req = {healthz_cpu / result.cpu_us:.2f}x"
        rows.append(
            (
                name,
                f"{result.requests_per_second:,.0f} req/s = {ratio:.2f}x healthz;"
                f" p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms;"
                f" {result.errors} errors / {result.requests:,}{cpu}",
                f">= {target}x, 0 errors" if target else "0 errors",
                "PASS" if ok else "BELOW TARGET",
            )
        )
    print(
        f"{CONNECTIONS} connections, {SECONDS}s each, {before.tool};"
        f" /healthz {before.requests_per_second:,.0f} then {after.requests_per_second:,.0f} req/s"
    )
    print_table("HTTP API under load (one uvicorn worker)", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
