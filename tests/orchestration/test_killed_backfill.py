"""Killing `metrics backfill` (SIGKILL of its process group, as an operator or a supervisor
does) stops its dbt too: nothing goes on writing after the run is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.batch.edge_events import all_events
from tests.batch.harness import BatchHarness
from tests.orchestration.conftest import warehouse_env

pytestmark = pytest.mark.slow

MARKER = "METRICS_TEST_KILL_MARKER"


def _marked_processes(marker: str) -> dict[int, str]:
    """Live processes whose environment carries this test's marker: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "State:\tZ" in status:  # exited, waiting to be reaped
            continue
        if f"{MARKER}={marker}".encode() in environ.split(b"\0"):
            found[int(entry.name)] = command
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_sigkill_of_the_backfill_group_stops_its_dbt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = warehouse_env("duckdb", tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    BatchHarness("duckdb", env["METRICS_SCHEMA"], env["METRICS_SOURCE_SCHEMA"], tmp_path).load(
        all_events()
    )
    marker = uuid.uuid4().hex
    home = tmp_path / "dagster_home"
    home.mkdir()
    backfill = ["backfill", "--grain", "daily", "--start", "2024-01-01", "--end", "2024-07-01"]
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", *backfill],
        env={**os.environ, MARKER: marker, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal or supervisor gives it
    )
    try:
        deadline = time.monotonic() + 120
        while not any("dbt" in cmd for cmd in _marked_processes(marker).values()):
            assert process.poll() is None, "the backfill ended before dbt started"
            assert time.monotonic() < deadline, "dbt never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while (alive := _marked_processes(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive == {}, f"still running after the backfill was killed: {alive}"
    finally:
        for pid in _marked_processes(marker):
            os.kill(pid, signal.SIGKILL)
