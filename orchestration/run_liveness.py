"""Runs started by the CLI or the demo that died without telling Dagster, and waits for the pool.

An in-process run killed outright (SIGKILL, out of memory) stays STARTED in Dagster's storage
and keeps its slot of the warehouse pool, so the next run would wait for ever and the audit log
would keep its row RUNNING. Each in-process run therefore carries its process's host, pid and
start time as tags; before the next one starts, runs of this host whose process is gone are
reported failed and their slots freed (their audit rows are then closed by the next attempt).
While a run waits for the pool, a line says who holds it and for how long.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

HOST_TAG = "metrics/host"
PID_TAG = "metrics/pid"
PROCESS_START_TAG = "metrics/process_start"

# Statuses in which a run holds (or is about to hold) a pool slot.
_LIVE = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the one executing a run."""
    pid = os.getpid()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(pid),
        PROCESS_START_TAG: _process_start(pid) or "",
    }


def _process_alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return not started or _process_start(pid) in (started, None)


def fail_dead_runs(instance: DagsterInstance, say: Callable[[str], None]) -> list[str]:
    """Report as failed the live runs of this host whose executing process is gone, and free
    their pool slots; returns their run ids."""
    host = socket.gethostname()
    dead: list[str] = []
    for run in instance.get_runs(filters=RunsFilter(statuses=_LIVE, tags={HOST_TAG: host})):
        try:
            pid = int(run.tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if _process_alive(pid, run.tags.get(PROCESS_START_TAG, "")):
            continue
        message = (
            f"the process executing this run (pid {pid} on {host}) is gone: it was killed or "
            "crashed; marked failed by the next run"
        )
        instance.report_run_failed(run, message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        say(f"note: run {run.run_id} ({run.job_name}) died with its process; marked failed")
        dead.append(run.run_id)
    return dead


@contextlib.contextmanager
def reporting_pool_wait(
    instance: DagsterInstance,
    run_id: str,
    pool: str,
    say: Callable[[str], None],
    *,
    first_after: float = 2.0,
    every: float = 15.0,
) -> Iterator[None]:
    """While the run `run_id` waits for a slot of `pool`, say so (first after `first_after`
    seconds, then every `every`), naming the runs that hold it."""
    done = threading.Event()
    began = time.monotonic()

    def watch() -> None:
        pause = first_after
        while not done.wait(pause):
            pause = every
            try:
                info = instance.event_log_storage.get_concurrency_info(pool)
            except Exception:  # a report, never a reason to fail the run
                return
            if run_id in info.active_run_ids:
                return  # it has its slot
            if run_id not in info.pending_run_ids:
                continue
            holders = ", ".join(sorted(info.active_run_ids)) or "none recorded"
            say(
                f"  waiting {time.monotonic() - began:.0f}s for the warehouse pool '{pool}'"
                f" ({info.limit} writer(s) at a time; held by run {holders})"
            )

    thread = threading.Thread(target=watch, name="pool-wait-report", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
