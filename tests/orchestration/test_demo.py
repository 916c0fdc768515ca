"""`make demo` end to end on a short stream: the embedded warehouse at its default (relative)
path, a local Dagster instance under DAGSTER_HOME, every partition built through Dagster."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from orchestration.demo import main as demo_main
from tests.test_readme import run_example

pytestmark = pytest.mark.slow


def test_demo_builds_every_partition_through_dagster(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
) -> None:
    for name in (
        "METRICS_TARGET",
        "METRICS_DUCKDB_PATH",
        "METRICS_SCHEMA",
        "METRICS_SOURCE_SCHEMA",
        "METRICS_WEEK_START",
        "METRICS_PARTITIONS_START",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # .data/warehouse.duckdb is relative to the caller's directory
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "dbt_target"))
    monkeypatch.setenv("METRICS_DEMO_DAYS", "10")

    assert demo_main() == 0
    out = capsys.readouterr().out
    assert "daily: 10 partition(s) 2025-01-01 .. 2025-01-10 in one run" in out
    assert "weekly: 2 partition(s) 2024-12-30 .. 2025-01-06 in one run" in out
    assert "monthly: 1 partition(s) 2025-01-01 .. 2025-01-01 in one run" in out
    assert "  ok day 2025-01-10: daily_metrics, stg_events" in out
    assert "latest complete week 2024-12-30" in out
    assert (tmp_path / ".data" / "warehouse.duckdb").exists()

    # The runs are in the local instance `make ui` shows afterwards.
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()
    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert {run.job_name for run in runs} == {
            "daily_rollups_job",
            "weekly_rollups_job",
            "monthly_rollups_job",
        }
        assert all(run.status is DagsterRunStatus.SUCCESS for run in runs)

    # The README's cache and reader example runs on the demo's warehouse (in a namespace of its
    # own); with these ten days of January, its April month has no events.
    ran = run_example(
        "### The dashboard cache and read API",
        redis_url,
        {"namespace": f"readme_{uuid.uuid4().hex[:8]}"},
        {"compute=lambda: {...}": "compute=lambda: {'ok': 1}"},
    )
    try:
        assert ran["value"] == {"ok": 1}
        assert ran["reader"].latest_period("monthly", "asset", "*") is None
        january = ran["reader"].weekly("asset", "*", date(2024, 12, 30), date(2025, 1, 13))
        assert [row.period_start for row in january] == [date(2024, 12, 30), date(2025, 1, 6)]
    finally:
        ran["cache"].clear_all()
        ran["cache"].close()
