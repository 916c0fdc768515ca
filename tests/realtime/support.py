"""Helpers for the realtime tests: private redis-server processes and key inspection.

Private servers (for restart, outage and cluster tests) run on free loopback ports with no
persistence (``--save "" --appendonly no``) in a temporary directory.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 50000)
        if _is_free(port) and _is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisServer:
    """A redis-server process on a loopback port, stoppable and restartable (data is lost)."""

    def __init__(self, directory: Path, port: int | None = None, *extra: str) -> None:
        # A port we pick may be taken by another process before redis-server binds it; then
        # the first start picks another (a port the caller gave is kept).
        self._repick = port is None
        self.extra = extra
        self.port = port or self._free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def _free_port(self) -> int:
        return free_cluster_port() if "--cluster-enabled" in self.extra else free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers; on a first start whose picked port was
        taken in the meantime, start again on another port."""
        for _ in range(5 if self._repick else 1):
            if self._start_once():
                self._repick = False
                return self
            if self._repick:
                self.port = self._free_port()
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def _start_once(self) -> bool:
        """Start redis-server on self.port; True once this very process answers, False when it
        exited (the port was taken; if another server answered there, it is not ours)."""
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--protected-mode", "no",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(
            port=self.port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
        )
        deadline = time.monotonic() + 10
        try:
            while self.process.poll() is None:
                try:
                    if int(client.info("server")["process_id"]) == self.process.pid:
                        return True
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.02)
            self.process = None
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class CountingConnection(redis.Connection):
    """Counts what is sent to Redis: one send_packed_command is one round trip."""

    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)


class GatedConnection(redis.Connection):
    """Holds every send while `gate` is armed and not yet opened; `entered` is set by a send
    that waits, so a test can act while a thread is inside a Redis call."""

    gate: threading.Event | None = None
    entered = threading.Event()

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        gate = type(self).gate
        if gate is not None:
            type(self).entered.set()
            gate.wait()
        super().send_packed_command(command, check_health)


class AsyncGatedConnection(redis.asyncio.Connection):
    """GatedConnection for the asyncio client: sends wait while `gate` is armed and not yet
    set; `entered` (if armed) is set by a send that waits."""

    gate: asyncio.Event | None = None
    entered: asyncio.Event | None = None

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        gate, entered = type(self).gate, type(self).entered
        if gate is not None:
            if entered is not None:
                entered.set()
            await gate.wait()
        await super().send_packed_command(command, check_health)


CLUSTER_OPTIONS = (
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", "5000",
)  # fmt: skip


def create_cluster(servers: list[RedisServer]) -> None:
    """Join started cluster-enabled servers into one cluster (all slots, no replicas) and wait
    until every node reports cluster_state:ok."""
    assert REDIS_CLI is not None
    nodes = [f"127.0.0.1:{server.port}" for server in servers]
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    for server in servers:
        client = redis.Redis(port=server.port)
        try:
            while client.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise RuntimeError("the test cluster did not reach cluster_state:ok")
                time.sleep(0.05)
        finally:
            client.close()


@contextmanager
def cluster_nodes(base: Path, nodes: int = 3) -> Iterator[list[RedisServer]]:
    """A loopback Redis Cluster of ``nodes`` primaries under ``base``; yields its servers (a
    stopped one restarts into the cluster) and stops every node afterwards."""
    servers = [RedisServer(base / f"node{i}", None, *CLUSTER_OPTIONS) for i in range(nodes)]
    try:
        for server in servers:
            server.start()
        create_cluster(servers)
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextmanager
def running_cluster(base: Path, nodes: int = 3) -> Iterator[str]:
    """`cluster_nodes`, yielding one node's URL (the realtime and cache cluster tests use it)."""
    with cluster_nodes(base, nodes) as servers:
        yield servers[0].url


def keys_under(client: redis.Redis, prefix: str) -> list[bytes]:
    """Every key under a prefix, by SCAN."""
    return list(client.scan_iter(match=f"{prefix}*", count=1000))


def redis_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1_000_000


def sleep_until(client: redis.Redis, moment: float) -> None:
    """Sleep until Redis' clock reaches `moment` (seconds since the epoch)."""
    remaining = moment - redis_time(client)
    if remaining > 0:
        time.sleep(remaining)
