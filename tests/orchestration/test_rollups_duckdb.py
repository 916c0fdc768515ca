"""Through Dagster on DuckDB: a 60-day single-run backfill, metadata and checks, the CLI, and
late data -> late-data sensor -> a failing daily run retried -> catch-up of weeks and months.

One warehouse is built for the whole module (three dbt invocations) and shared.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetRecordsFilter,
    build_sensor_context,
    evaluate_automation_conditions,
)

from metrics_events import Event
from orchestration.audit_log import AuditEntry, AuditLog, JobStatus
from orchestration.cli import main as cli_main
from orchestration.partitions import Grain
from orchestration.runner import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    run_partition_range,
)
from tests.batch import reference
from tests.batch.edge_events import all_events
from tests.batch.harness import assert_same_rows
from tests.orchestration.conftest import (
    RETRY_DELAY_SECONDS,
    BuiltWarehouse,
    assert_each_run_logged_completed,
    late_events,
)
from warehouse import Warehouse

pytestmark = pytest.mark.slow

START, END = date(2024, 2, 1), date(2024, 4, 1)  # 60 days: 2024 is a leap year


def _events() -> list[Event]:
    return [e for e in all_events() if START <= e.event_date < END]


@pytest.fixture(scope="module")
def built(build_warehouse: Any) -> BuiltWarehouse:
    return build_warehouse("duckdb", _events(), START, END)  # type: ignore[no-any-return]


@pytest.fixture()
def duck(built: BuiltWarehouse, monkeypatch: pytest.MonkeyPatch) -> BuiltWarehouse:
    return built.use(monkeypatch)


def test_sixty_day_backfill_is_one_dbt_invocation_per_grain(duck: BuiltWarehouse) -> None:
    assert len(duck.runs[Grain.DAY].keys) == 60
    assert all(run.success for run in duck.runs.values())
    assert duck.dbt_calls.by_op() == {"daily_rollups": 1, "weekly_rollups": 1, "monthly_rollups": 1}
    for op, args, window in duck.dbt_calls.calls:
        first = duck.runs[Grain.parse(op.split("_")[0])].keys[0]
        # The window reaches dbt as --vars, as from the command line.
        assert args[:3] == ["build", "--exclude-resource-type", "unit_test"]
        assert window == (first, "2024-04-01"), op
    assert_each_run_logged_completed(duck)


def test_tables_match_the_reference(duck: BuiltWarehouse) -> None:
    duck.harness.assert_matches_reference(duck.events)


def test_materializations_carry_window_rows_and_movers(duck: BuiltWarehouse) -> None:
    record = duck.instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey(["metrics", "weekly_metrics"]), asset_partitions=["2024-03-04"]
        ),
        limit=1,
    ).records[0]
    metadata = record.asset_materialization.metadata  # type: ignore[union-attr]
    assert metadata["window"].value == "[2024-01-29, 2024-04-01)"
    assert metadata["partitions_in_run"].value == 9
    assert metadata["rows_written"].value > 0
    movers = str(metadata["top_growth_movers"].value)
    # The latest week of the run with data (events end on 2024-03-17).
    assert movers.startswith("**Top growth movers, week of 2024-03-11**")

    daily = (
        duck.instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=AssetKey(["metrics", "daily_metrics"]), asset_partitions=["2024-03-01"]
            ),
            limit=1,
        )
        .records[0]
        .asset_materialization
    )
    assert daily is not None
    # The rows the window owns: every daily_metrics row of the 60 days.
    expected_rows = len(reference.all_tables(duck.events, 0)["daily_metrics"])
    assert daily.metadata["rows_written"].value == expected_rows
    assert "| entity | previous | current | growth |" in str(
        daily.metadata["top_growth_movers"].value
    )


def test_dbt_tests_are_recorded_as_asset_checks(duck: BuiltWarehouse) -> None:
    checks = [
        AssetCheckKey(AssetKey(["raw", "events"]), "raw_events_row_rules"),
        AssetCheckKey(AssetKey(["metrics", "stg_events"]), "unique_stg_events_event_id"),
        AssetCheckKey(AssetKey(["metrics", "stg_events"]), "stg_events_event_on_one_day"),
        AssetCheckKey(
            AssetKey(["metrics", "weekly_metrics"]),
            "unique_combination_weekly_metrics_week_start__entity_type__entity_id__event_type",
        ),
    ]
    latest = duck.instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    assert set(latest) == set(checks)
    for key, execution in latest.items():
        assert execution.status.value == "SUCCEEDED", key


def test_cli_backfill_prints_a_line_per_partition(
    duck: BuiltWarehouse, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    code = cli_main(
        ["backfill", "--grain", "daily", "--start", "2024-03-10", "--end", "2024-03-13"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "daily: 3 partition(s) 2024-03-10 .. 2024-03-12 in one run" in out
    for day in ("2024-03-10", "2024-03-11", "2024-03-12"):
        assert f"ok day {day}: daily_metrics, stg_events" in out
    assert "attempt 1: COMPLETED" in out
    assert duck.dbt_calls.by_op()["daily_rollups"] == 2
    duck.harness.assert_matches_reference(duck.events)


def test_custom_metrics_are_computed_for_each_day(duck: BuiltWarehouse) -> None:
    from custom_metrics import SYSTEM, CustomMetricService

    with duck.harness.connect() as wh:
        stored = CustomMetricService(wh, SYSTEM).create_definition(
            {
                "name": "Purchases",
                "metric_type": "COUNT",
                "data_source": "events",
                "calculation_formula": "event_id",
                "filters": {"event_type": "purchase"},
                "time_grain": "day",
                "visibility": "PUBLIC",
            }
        )
    job = duck.defs.resolve_job_def("custom_metrics_job")
    result = job.execute_in_process(
        instance=duck.instance,
        tags={
            "dagster/asset_partition_range_start": "2024-02-28",
            "dagster/asset_partition_range_end": "2024-03-01",
        },
    )
    assert result.success
    [materialization, *_] = result.get_asset_materialization_events()
    metadata = materialization.step_materialization_data.materialization.metadata
    assert metadata["calculations_succeeded"].value == 3
    assert metadata["calculations_failed"].value == 0
    with duck.harness.connect() as wh:
        rows = wh.query(
            f"select period_start, value from {wh.schema}.custom_metric_values "
            f"where definition_id = {wh.param('id')} order by period_start",
            {"id": stored.definition_id},
        )
    purchases = reference.all_tables(duck.events, 0)["daily_metrics"]
    expected = [
        (day, purchases[(day, "*", "*", "purchase")]["event_count"])
        for day in (date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1))
    ]
    assert [(day, int(value)) for day, value in rows] == expected


def _snapshot(built: BuiltWarehouse, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return built.harness.fetch(table)


def _staged(built: BuiltWarehouse) -> dict[str, datetime]:
    """stg_events as event_id -> ingested_at of the delivery kept."""
    with built.harness.connect() as wh:
        rows = wh.query(f"select event_id, ingested_at from {wh.schema}.stg_events")
    return {str(event_id): ingested for event_id, ingested in rows}


def test_late_data_is_rerun_with_retries_then_weeks_and_months_catch_up(
    duck: BuiltWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    late_days = (date(2024, 2, 29), date(2024, 3, 6))
    now = datetime.now(UTC) + timedelta(seconds=1)
    templates = [next(e for e in duck.events if e.event_date == day) for day in late_days]
    late = [e for t in templates for e in late_events(t, 3, now)]
    # A built day gets a re-delivery whose ingestion predates the build: not late.
    on_time = next(e for e in duck.events if e.event_date == date(2024, 3, 1))
    redelivered = replace(on_time, ingested_at=on_time.ingested_at - timedelta(hours=1))
    duck.harness.load([*late, redelivered])
    events = [*duck.events, *late, redelivered]

    # 1. The late-data sensor asks for exactly the two days.
    late_sensor = next(s for s in duck.rollups.sensors if s.name == "late_data_sensor")
    result = late_sensor(build_sensor_context(instance=duck.instance))
    requested = sorted(str(r.partition_key) for r in result.run_requests)
    assert requested == [d.isoformat() for d in late_days]
    assert result.cursor is not None
    automation_cursor = evaluate_automation_conditions(
        defs=duck.defs, instance=duck.instance
    ).cursor

    # 2. The daily run over those days fails twice and succeeds on its third attempt. Attempt 1:
    # the source table is missing. Attempt 2: stg_events builds but daily_metrics cannot. Both
    # are FAILED (docs/reference.md). Each repair happens as the failed attempt is logged,
    # before the retry.
    before_daily = _snapshot(duck, "daily_metrics")
    source = f"{duck.env['METRICS_SOURCE_SCHEMA']}.events"
    daily_metrics = f"{duck.env['METRICS_SCHEMA']}.daily_metrics"
    seen: dict[str, Any] = {}
    original_finish = AuditLog.finish

    def finish(self: AuditLog, log_id: str, status: JobStatus, **kwargs: Any) -> None:
        original_finish(self, log_id, status, **kwargs)
        failures = seen["failures"] = seen.get("failures", 0) + (status is JobStatus.FAILED)
        with duck.harness.connect() as wh:
            if status is JobStatus.FAILED and failures == 1:
                _move_table(wh, f"{source}_broken", source)
                wh.execute(f"alter table {daily_metrics} rename column revenue_cents to rc_broken")
            elif status is JobStatus.FAILED and failures == 2:
                wh.execute(f"alter table {daily_metrics} rename column rc_broken to revenue_cents")
        if status is JobStatus.FAILED and failures == 2:
            seen["daily_after_partial"] = _snapshot(duck, "daily_metrics")
            seen["stg_after_partial"] = _staged(duck)

    with duck.harness.connect() as wh:
        _move_table(wh, source, f"{source}_broken")
    monkeypatch.setattr(AuditLog, "finish", finish)
    run = run_partition_range(
        duck.defs,
        Grain.DAY,
        [d.isoformat() for d in (date(2024, 2, 29), *_days_to(late_days))],
        duck.instance,
    )
    monkeypatch.setattr(AuditLog, "finish", original_finish)
    assert run.success
    entries = AuditLog().entries(run.run_id)
    assert [(e["attempt"], e["status"]) for e in entries] == [
        (1, "FAILED"),
        (2, "FAILED"),
        (3, "COMPLETED"),
    ]
    assert "events" in entries[0]["error"] and "does not exist" in entries[0]["error"]
    assert "written before the failure" not in entries[0]["error"]
    assert "daily_metrics" in entries[1]["error"] and entries[2]["error"] is None
    assert "written before the failure (the retry rebuilds their window): " in entries[1]["error"]
    assert "stg_events" in entries[1]["error"].split("written before the failure")[1]
    # Exponential backoff: the n-th retry waits delay * (2**n - 1).
    gaps = [(entries[i + 1]["started_at"] - entries[i]["ended_at"]).total_seconds() for i in (0, 1)]
    assert gaps[0] >= RETRY_DELAY_SECONDS * 0.9, gaps
    assert gaps[1] >= RETRY_DELAY_SECONDS * 3 * 0.9, gaps
    # Nothing partial: the failed model's table was exactly as before, while the model that did
    # build already had the late events.
    assert_same_rows("daily_metrics", seen["daily_after_partial"], before_daily)
    kept = {e.event_id: e.ingested_at for e in reference.deduplicate(events)}
    assert seen["stg_after_partial"] == kept
    expected = reference.all_tables(events, 0)
    assert_same_rows("daily_metrics", _snapshot(duck, "daily_metrics"), expected["daily_metrics"])

    # 3. Dagster's automation asks for the weeks and months that read the rebuilt days (and,
    # for growth, the ones after them) and for the custom metrics already computed for those
    # days; running what it asks brings every table up to date.
    automation = evaluate_automation_conditions(
        defs=duck.defs, instance=duck.instance, cursor=automation_cursor
    )
    by_grain: dict[str, set[str]] = {}
    for key in duck.defs.resolve_asset_graph().get_all_asset_keys():
        partitions = automation.get_requested_partitions(key)
        if partitions:
            by_grain.setdefault(_grain_of(duck, key), set()).update(partitions)
    custom = by_grain.pop("custom", None)
    assert by_grain == {
        "weekly": {"2024-02-26", "2024-03-04", "2024-03-11"},
        "monthly": {"2024-02-01", "2024-03-01"},
    }
    # The custom metrics test above computed 2024-02-28 .. 03-01: the rebuilt ones are redone.
    assert custom == {"2024-02-29", "2024-03-01"} or (custom is None and not _custom_done(duck))
    for grain in (Grain.WEEK, Grain.MONTH):
        keys = sorted(by_grain[grain.adjective])
        assert run_partition_range(duck.defs, grain, keys, duck.instance).success
    if custom:
        job = duck.defs.resolve_job_def("custom_metrics_job")
        first, *_, last = sorted(custom)
        tags = {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}
        assert job.execute_in_process(instance=duck.instance, tags=tags).success
    duck.harness.assert_matches_reference(events)


def _grain_of(built: BuiltWarehouse, key: AssetKey) -> str:
    """`daily`, `weekly`, `monthly` (the rollups' groups) or `custom`."""
    group = built.defs.resolve_asset_graph().get(key).group_name or ""
    return group.removesuffix("_rollups") if group.endswith("_rollups") else "custom"


def _custom_done(built: BuiltWarehouse) -> bool:
    key = AssetKey(["metrics", "custom_metric_values"])
    return bool(built.instance.fetch_materializations(key, limit=1).records)


def _move_table(wh: Warehouse, old: str, new: str) -> None:
    """Rename a table (DuckDB cannot rename one that has indexes): copy, then drop."""
    wh.execute(f"create table {new} as select * from {old}")
    wh.execute(f"drop table {old}")


def _days_to(late_days: tuple[date, ...]) -> list[date]:
    """The days after the first late day up to the last one (a contiguous range)."""
    days, day = [], late_days[0] + timedelta(days=1)
    while day <= late_days[-1]:
        days.append(day)
        day += timedelta(days=1)
    return days


def test_an_attempt_killed_outright_is_closed_by_the_next_run(duck: BuiltWarehouse) -> None:
    # A worker killed by the OS leaves its row RUNNING; the next rollup attempt closes it.
    day = date(2024, 3, 1)
    audit = AuditLog()
    orphan = audit.start(
        AuditEntry(
            "daily_rollups_job",
            "daily",
            day,
            day,
            day,
            day + timedelta(days=1),
            "a-run-whose-worker-was-killed",
            1,
        )
    )
    run = run_partition_range(duck.defs, Grain.DAY, [day.isoformat()], duck.instance)
    assert run.success
    [closed] = [row for row in audit.entries() if row["log_id"] == orphan]
    assert closed["status"] == JobStatus.FAILED
    assert "stopped without recording its end" in closed["error"]
    assert run.run_id in closed["error"]
    assert [e["status"] for e in audit.entries(run.run_id)] == [JobStatus.COMPLETED]


def test_a_run_whose_process_died_is_failed_and_frees_the_pool(duck: BuiltWarehouse) -> None:
    # A CLI run SIGKILLed mid-build stays STARTED in Dagster and holds the warehouse pool (one
    # writer): the next run marks it failed, frees its slot, runs, and closes its audit row.
    from dagster import DagsterRun, DagsterRunStatus, instance_for_test

    from orchestration.dbt_assets import WAREHOUSE_POOL
    from orchestration.run_liveness import HOST_TAG, PID_TAG, PROCESS_START_TAG, owner_tags

    gone = subprocess.Popen(["true"])
    gone.wait()
    tags = {**owner_tags(), PID_TAG: str(gone.pid), PROCESS_START_TAG: ""}
    day = date(2024, 3, 4)
    overrides = {"concurrency": {"pools": {"default_limit": 1}}}
    with instance_for_test(overrides=overrides) as instance:
        dead = DagsterRun(
            job_name="daily_rollups_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
        ).with_tags(tags)
        instance.add_run(dead)
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, dead.run_id, "step").is_claimed
        audit = AuditLog()
        orphan = audit.start(
            AuditEntry("daily_rollups_job", "daily", day, day, day, day, dead.run_id, 1)
        )
        lines: list[str] = []
        run = run_partition_range(
            duck.defs, Grain.DAY, [day.isoformat()], instance, progress=lines.append
        )
        assert run.success, lines
        assert any(f"run {dead.run_id}" in line and "marked failed" in line for line in lines)
        failed = instance.get_run_by_id(dead.run_id)
        assert failed is not None and failed.status == DagsterRunStatus.FAILURE
        assert dead.run_id not in storage.get_concurrency_info(WAREHOUSE_POOL).active_run_ids
        [closed] = [row for row in audit.entries() if row["log_id"] == orphan]
        assert closed["status"] == JobStatus.FAILED
        assert instance.get_run_by_id(run.run_id).tags[HOST_TAG] == tags[HOST_TAG]  # type: ignore[union-attr]


def test_a_run_waiting_for_the_pool_says_so(duck: BuiltWarehouse) -> None:
    from dagster import DagsterRun, DagsterRunStatus, instance_for_test

    from orchestration.dbt_assets import WAREHOUSE_POOL
    from orchestration.run_liveness import owner_tags, reporting_pool_wait

    overrides = {"concurrency": {"pools": {"default_limit": 1}}}
    with instance_for_test(overrides=overrides) as instance:
        holder = DagsterRun(
            job_name="daily_rollups_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED
        ).with_tags(owner_tags())  # this (live) process: not failed by anyone
        instance.add_run(holder)
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        assert storage.claim_concurrency_slot(WAREHOUSE_POOL, holder.run_id, "step").is_claimed
        waiting = str(uuid.uuid4())
        assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, waiting, "step").is_claimed
        lines: list[str] = []
        with reporting_pool_wait(
            instance, waiting, WAREHOUSE_POOL, lines.append, first_after=0.1, every=0.1
        ):
            deadline = time.monotonic() + 10
            while not lines and time.monotonic() < deadline:
                time.sleep(0.05)
        assert lines and "waiting" in lines[0] and WAREHOUSE_POOL in lines[0]
        assert holder.run_id in lines[0]
