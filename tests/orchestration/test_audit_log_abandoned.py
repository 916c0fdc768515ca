"""Audit rows left RUNNING by a worker that was killed outright are closed as FAILED by the next
attempt to start; rows of attempts that may still end are left alone. On both warehouses."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest

from orchestration.audit_log import AuditEntry, AuditLog, JobStatus
from warehouse import WarehouseConfig, connect


@pytest.fixture(params=["duckdb", "postgres"])
def audit(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AuditLog:
    schema = f"metrics_a{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("METRICS_TARGET", request.param)
    monkeypatch.setenv("METRICS_SCHEMA", schema)
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    if request.param == "postgres":
        request.getfixturevalue("pg_env")
        request.addfinalizer(lambda: _drop(schema))
    return AuditLog(WarehouseConfig())


def _drop(schema: str) -> None:
    with connect(WarehouseConfig()) as wh:
        wh.execute(f"drop schema if exists {schema} cascade")


def _start(audit: AuditLog, run_id: str, attempt: int) -> str:
    day = date(2024, 3, 1)
    return audit.start(
        AuditEntry("daily_rollups_job", "daily", day, day, day, date(2024, 3, 2), run_id, attempt)
    )


def test_only_attempts_that_can_no_longer_end_are_closed(audit: AuditLog) -> None:
    killed = _start(audit, "run-killed", 1)  # its run is over: nothing will close the row
    elsewhere = _start(audit, "run-alive", 1)  # another run, still going
    earlier = _start(audit, "run-now", 1)  # the current run's previous attempt
    current = _start(audit, "run-now", 2)  # this attempt
    done = _start(audit, "run-killed", 2)
    audit.finish(done, JobStatus.COMPLETED, rows_written=1)
    asked: list[str] = []

    def run_is_active(run_id: str) -> bool:
        asked.append(run_id)
        return run_id == "run-alive"

    assert audit.close_abandoned(run_is_active, "run-now", 2) == 2
    rows = {row["log_id"]: row for row in audit.entries()}
    assert rows[killed]["status"] == JobStatus.FAILED
    assert "run-killed is no longer running" in rows[killed]["error"]
    assert "closed by run run-now" in rows[killed]["error"]
    assert rows[earlier]["status"] == JobStatus.FAILED
    assert "attempt 2 started" in rows[earlier]["error"]
    assert rows[killed]["ended_at"] is not None
    for untouched in (elsewhere, current):
        assert rows[untouched]["status"] == JobStatus.RUNNING and rows[untouched]["error"] is None
    assert rows[done]["status"] == JobStatus.COMPLETED
    assert sorted(asked) == ["run-alive", "run-killed"]  # one question per run
    assert audit.close_abandoned(run_is_active, "run-now", 2) == 0  # nothing left to close


def test_nothing_to_close_before_the_first_attempt(audit: AuditLog) -> None:
    assert audit.close_abandoned(lambda _run_id: False, "run-first", 1) == 0
