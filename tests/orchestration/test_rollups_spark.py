"""Through Dagster on Spark, unchanged: a daily partitioned backfill of three weeks of edge-case
events (one run, one dbt child with a Spark session of its own on the metastore the test process
shares) is logged COMPLETED and gives the reference's daily rows; then late and vanished events,
the late-data sensor, and `metrics backfill --grain all` over the range, whose first daily
attempt fails and is retried, leave every table as a full build leaves it (the reference);
custom metrics then read the rollups the audit log says are fresh. Five dbt children in all:
each costs a JVM start."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dagster import build_sensor_context

from metrics_events import Event
from orchestration.audit_log import AuditLog, JobStatus
from orchestration.cli import main as cli_main
from orchestration.partitions import Grain
from tests.batch import reference
from tests.batch.edge_events import all_events
from tests.batch.harness import assert_same_rows
from tests.orchestration.conftest import (
    BuiltWarehouse,
    assert_each_run_logged_completed,
    assert_rollups_answer_like_the_events,
    late_events,
)

pytestmark = [pytest.mark.slow, pytest.mark.spark]

START, END = date(2024, 2, 19), date(2024, 3, 11)  # three weeks over 29 February


def _events() -> list[Event]:
    return [e for e in all_events() if START <= e.event_date < END]


@pytest.fixture(scope="module")
def built(build_warehouse: Any, spark_dirs: dict[str, str]) -> BuiltWarehouse:
    return build_warehouse(  # type: ignore[no-any-return]
        "spark", _events(), START, END, spark=spark_dirs, grains=(Grain.DAY,)
    )


@pytest.fixture()
def spark(built: BuiltWarehouse, monkeypatch: pytest.MonkeyPatch) -> BuiltWarehouse:
    return built.use(monkeypatch)


def test_daily_backfill_is_one_logged_run_matching_the_reference(spark: BuiltWarehouse) -> None:
    assert spark.dbt_calls.by_op() == {"daily_rollups": 1}
    assert len(spark.runs[Grain.DAY].keys) == 21
    assert_each_run_logged_completed(spark)
    expected = reference.all_tables(spark.events, 0)["daily_metrics"]
    assert_same_rows("daily_metrics", spark.harness.fetch("daily_metrics"), expected)


def test_late_and_vanished_events_then_backfill_all_with_a_failed_attempt(
    spark: BuiltWarehouse,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    began = datetime.now(UTC)
    late_day, gone_day = date(2024, 2, 29), date(2024, 3, 6)
    template = next(e for e in spark.events if e.event_date == late_day)
    late = late_events(template, 3, began + timedelta(seconds=1))
    spark.harness.load(late)
    gone = {e.event_id for e in spark.events if e.event_date == gone_day}
    spark.harness.delete(gone)
    events = [e for e in spark.events if e.event_id not in gone] + late

    # The late-data sensor, reading the source on Spark, asks for exactly the late day.
    sensor = next(s for s in spark.rollups.sensors if s.name == "late_data_sensor")
    result = sensor(build_sensor_context(instance=spark.instance))
    assert [str(r.partition_key) for r in result.run_requests] == [late_day.isoformat()]

    # The daily run's first attempt finds no source table; it is put back as that attempt is
    # logged FAILED, and the retry completes.
    source = f"{spark.env['METRICS_SOURCE_SCHEMA']}.events"
    with spark.harness.connect() as wh:
        wh.execute(f"alter table {source} rename to {source}_away")
    original_finish = AuditLog.finish

    def finish(self: AuditLog, log_id: str, status: JobStatus, **kwargs: Any) -> None:
        original_finish(self, log_id, status, **kwargs)
        if status is JobStatus.FAILED:
            with spark.harness.connect() as wh:
                wh.execute(f"alter table {source}_away rename to {source}")

    monkeypatch.setattr(AuditLog, "finish", finish)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    # Every grain over the whole range: the days again, the weeks and months for the first time.
    code = cli_main(["backfill", "--grain", "all", "--start", str(START), "--end", str(END)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "attempt 1: FAILED" in out and "attempt 2: COMPLETED" in out, out
    # Every partition's models were reported to Dagster as materialized.
    for line in ("day 2024-03-06", "week 2024-02-19", "week 2024-03-04", "month 2024-03-01"):
        assert f"ok {line}: " in out, out

    logged = [e for e in AuditLog().entries() if e["started_at"] >= began]
    assert [(e["grain"], e["attempt"], e["status"]) for e in logged] == [
        ("daily", 1, "FAILED"),
        ("daily", 2, "COMPLETED"),
        ("weekly", 1, "COMPLETED"),
        ("monthly", 1, "COMPLETED"),
    ]
    assert "events" in logged[0]["error"] and logged[1]["error"] is None
    assert logged[0]["window_start"] == START and logged[0]["ended_at"] >= began
    assert all(e["rows_written"] > 0 for e in logged[1:])
    # The daily re-run, and the weeks and months built after it, leave what a full build of the
    # events now leaves (the reference).
    spark.harness.assert_matches_reference(events)


def test_custom_metrics_read_the_rollups_the_runs_logged(spark: BuiltWarehouse) -> None:
    with spark.harness.connect() as wh:
        assert_rollups_answer_like_the_events(wh, (date(2024, 2, 28), date(2024, 4, 1)))
