"""dbt through the fork server (orchestration.dbt_forkserver) behaves as the `dbt` command does:
the same output on the launcher's stdout, the same exit codes, the caller's environment and
working directory; and the helper goes away with the process that started it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration import dbt_forkserver
from orchestration.manifest import PROJECT_DIR

LAUNCHER = Path(sys.executable).with_name("metrics-dbt")
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server needs fork()")


def _launch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`metrics-dbt ARGS` in the dbt project's directory, as dagster-dbt starts it."""
    return subprocess.run(
        [str(LAUNCHER), *args],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _alive(pid: int) -> bool:
    """Running (an exited process that nobody has reaped yet is a zombie, not alive)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.fixture()
def served_env() -> dict[str, str]:
    path = dbt_forkserver.ensure_started()
    assert path is not None
    return {**os.environ, dbt_forkserver.SOCKET_ENV: path, dbt_forkserver.SWITCH_ENV: "1"}


def test_output_and_exit_codes_are_dbts(served_env: dict[str, str]) -> None:
    version = _launch("--version", env=served_env)
    assert version.returncode == 0, version.stderr
    assert "installed:" in version.stdout
    unknown = _launch("no-such-command", env=served_env)
    assert unknown.returncode == 2  # click's usage error, as `dbt no-such-command` exits
    assert "No such command" in unknown.stderr + unknown.stdout


def test_the_invocation_sees_the_callers_environment_and_directory(
    served_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **served_env,
        "METRICS_SOURCE_SCHEMA": "raw_from_the_caller",
        "METRICS_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "METRICS_TARGET": "duckdb",
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "target"),
    }
    listed = _launch(
        "ls",
        "--resource-type",
        "source",
        "--output",
        "json",
        "--output-keys",
        "schema",
        "--profiles-dir",
        ".",
        env=env,  # relative: resolved in the caller's directory
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    schemas = [
        json.loads(line)["schema"] for line in listed.stdout.splitlines() if line.startswith("{")
    ]
    assert schemas == ["raw_from_the_caller"]
    assert (tmp_path / "target" / "manifest.json").exists()


def test_without_a_server_the_launcher_runs_dbt_itself(tmp_path: Path) -> None:
    env = {**os.environ, dbt_forkserver.SOCKET_ENV: str(tmp_path / "gone" / "fork.sock")}
    assert _launch("--version", env=env).returncode == 0
    switched_off = {**os.environ, dbt_forkserver.SWITCH_ENV: "0"}
    assert _launch("--version", env=switched_off).returncode == 0


@pytest.mark.parametrize("ending", ["exit", "os._exit"])
def test_the_helper_ends_with_the_process_that_started_it(ending: str) -> None:
    # `exit` runs atexit (the helper is stopped); `os._exit` skips it (the helper notices).
    code = (
        "import os, sys\n"
        "from orchestration import dbt_forkserver\n"
        "dbt_forkserver.ensure_started()\n"
        "process, path = dbt_forkserver._started[os.getpid()]\n"
        "print(process.pid, path, flush=True)\n"
        + ("sys.exit(0)\n" if ending == "exit" else "os._exit(0)\n")
    )
    owner = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    pid, path = owner.stdout.split()
    helper = int(pid)
    deadline = time.monotonic() + 30
    while _alive(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(helper)
    assert not Path(path).parent.exists()  # nothing left in the temporary directory


def test_dagster_runs_dbt_through_the_launcher() -> None:
    from orchestration.resources import dbt_resource

    assert Path(dbt_resource().dbt_executable).name == "metrics-dbt"


def test_a_helper_that_cannot_import_dbt_sends_launchers_to_plain_dbt(tmp_path: Path) -> None:
    directory = tmp_path / "server"
    directory.mkdir()
    path = directory / "fork.sock"
    broken = (
        "import os, sys\n"
        "sys.modules['dbt.cli.main'] = None  # import dbt.cli.main raises ImportError\n"
        "from orchestration import dbt_forkserver\n"
        f"dbt_forkserver._serve({str(path)!r}, os.getppid())\n"
    )
    helper = subprocess.run(
        [sys.executable, "-c", broken], capture_output=True, text=True, timeout=60, check=False
    )
    assert helper.returncode != 0 and "dbt.cli.main" in helper.stderr
    assert not directory.exists()  # launchers stop waiting for the socket at once
    env = {**os.environ, dbt_forkserver.SOCKET_ENV: str(path)}
    assert _launch("--version", env=env).returncode == 0
