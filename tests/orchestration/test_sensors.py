"""The late-data sensor and the catch-up automation, against a real instance (materializations
reported directly, no dbt run needed) and, for late data, a real source table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    SensorDefinition,
    SkipReason,
    build_sensor_context,
    evaluate_automation_conditions,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test

from metrics_events import Event
from orchestration.definitions import build_rollups, definitions_for
from orchestration.late_data import LateDataCursor
from orchestration.settings import OrchestrationSettings
from tests.batch.edge_events import generated_events
from tests.batch.harness import BatchHarness
from tests.orchestration.conftest import warehouse_env

STG = AssetKey(["metrics", "stg_events"])
DAILY = AssetKey(["metrics", "daily_metrics"])
WEEKLY_TOTALS = AssetKey(["metrics", "weekly_totals"])
WEEKLY = AssetKey(["metrics", "weekly_metrics"])
MONTHLY_TOTALS = AssetKey(["metrics", "monthly_totals"])
MONTHLY = AssetKey(["metrics", "monthly_metrics"])
BREAKDOWN = AssetKey(["metrics", "monthly_weekly_breakdown"])
CUSTOM = AssetKey(["metrics", "custom_metric_values"])
CATCH_UP_LABEL = "catch up after its inputs were rebuilt"


@pytest.fixture()
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture()
def rollup_defs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Definitions:
    env = warehouse_env("duckdb", tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return definitions_for(build_rollups(OrchestrationSettings.from_env()))


@pytest.fixture()
def sensors(rollup_defs: Definitions) -> dict[str, SensorDefinition]:
    return {sensor.name: sensor for sensor in rollup_defs.sensors or []}


def _built(instance: DagsterInstance, key: AssetKey, *partitions: str) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=key, partition=partition)
        )


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _late(template: Event, suffix: str, ingested_at: datetime) -> Event:
    return replace(template, event_id=f"late_{suffix}", ingested_at=ingested_at)


@pytest.fixture()
def week_built(instance: DagsterInstance, tmp_path: Path) -> tuple[list[Event], BatchHarness]:
    """The generated events in a DuckDB source, and 2024-02-26 .. 2024-03-03 built."""
    events = generated_events()
    harness = BatchHarness("duckdb", "unused", "unused", tmp_path)
    harness.load(events)
    built_days = _days(date(2024, 2, 26), date(2024, 3, 3))
    _built(instance, STG, *built_days)
    _built(instance, DAILY, *built_days)
    return events, harness


def test_late_data_sensor_requests_exactly_the_days_built_before_their_events(
    sensors: dict[str, SensorDefinition],
    instance: DagsterInstance,
    week_built: tuple[list[Event], BatchHarness],
) -> None:
    events, harness = week_built

    after_build = datetime.now(UTC)  # later than every build reported above
    by_day = {
        day: next(e for e in events if e.event_date == day)
        for day in (date(2024, 2, 27), date(2024, 2, 28), date(2024, 3, 1), date(2024, 3, 10))
    }
    harness.load(
        [
            _late(by_day[date(2024, 2, 27)], "a", after_build),
            _late(by_day[date(2024, 3, 1)], "b", after_build),
            # ingested before the day was built: it is in the build, not late
            _late(by_day[date(2024, 2, 28)], "c", after_build - timedelta(days=30)),
            # a day never built is for the schedules and backfills, not late data
            _late(by_day[date(2024, 3, 10)], "d", after_build),
        ]
    )

    sensor = sensors["late_data_sensor"]
    result = sensor(build_sensor_context(instance=instance))
    assert sorted(str(r.partition_key) for r in result.run_requests) == ["2024-02-27", "2024-03-01"]
    assert all(r.tags["metrics/trigger"] == "late_data" for r in result.run_requests)
    first_keys = {r.run_key for r in result.run_requests}

    # The next tick rescans an overlap and asks again with the same run keys (deduplicated).
    again = sensor(build_sensor_context(instance=instance, cursor=result.cursor))
    assert {r.run_key for r in again.run_requests} == first_keys

    # 2024-02-27 rebuilt after its late event; on 2024-03-01 only stg_events was rebuilt (the
    # daily_metrics build failed): it still counts as late.
    _built(instance, STG, "2024-02-27", "2024-03-01")
    _built(instance, DAILY, "2024-02-27")
    later = sensor(build_sensor_context(instance=instance, cursor=again.cursor))
    assert [r.partition_key for r in later.run_requests] == ["2024-03-01"]


def test_late_data_sensor_skips_when_the_source_is_not_readable(
    sensors: dict[str, SensorDefinition], instance: DagsterInstance, tmp_path: Path
) -> None:
    # No warehouse file at all yet (it would be the same while a run holds DuckDB's lock).
    result = sensors["late_data_sensor"](build_sensor_context(instance=instance))
    assert isinstance(result, SkipReason)
    assert "not readable" in str(result.skip_message)


def _requested(result: Any) -> dict[str, list[str]]:
    """Partitions requested per model by one automation evaluation (models with any)."""
    keys = (WEEKLY_TOTALS, WEEKLY, MONTHLY_TOTALS, MONTHLY, BREAKDOWN, CUSTOM)
    found = {key.path[-1]: sorted(result.get_requested_partitions(key)) for key in keys}
    return {name: partitions for name, partitions in found.items() if partitions}


def test_rebuilt_days_bring_their_built_weeks_and_months_up_to_date(
    rollup_defs: Definitions, instance: DagsterInstance
) -> None:
    _built(instance, STG, *_days(date(2024, 2, 12), date(2024, 3, 17)))
    _built(instance, DAILY, *_days(date(2024, 2, 12), date(2024, 3, 17)))
    for key in (WEEKLY_TOTALS, WEEKLY):
        _built(instance, key, "2024-02-19", "2024-02-26", "2024-03-04")
    for key in (MONTHLY_TOTALS, MONTHLY, BREAKDOWN):
        _built(instance, key, "2024-02-01", "2024-03-01")
    _built(instance, CUSTOM, "2024-02-28")
    settled = evaluate_automation_conditions(defs=rollup_defs, instance=instance)
    # Every week and month was built after its days: nothing to catch up.
    assert settled.total_requested == 0

    _built(instance, STG, "2024-02-28")  # a day rebuilt (late data) ...
    _built(instance, DAILY, "2024-02-28")
    result = evaluate_automation_conditions(
        defs=rollup_defs, instance=instance, cursor=settled.cursor
    )
    # ... its week and month, the growth of the week and month after them (they compare with
    # the rebuilt period) and its custom metrics; 2024-02-19 and never-built periods untouched.
    assert _requested(result) == {
        "weekly_totals": ["2024-02-26"],
        "weekly_metrics": ["2024-02-26", "2024-03-04"],
        "monthly_totals": ["2024-02-01"],
        "monthly_metrics": ["2024-02-01", "2024-03-01"],
        "monthly_weekly_breakdown": ["2024-02-01"],
        "custom_metric_values": ["2024-02-28"],
    }
    quiet = evaluate_automation_conditions(
        defs=rollup_defs, instance=instance, cursor=result.cursor
    )
    assert quiet.total_requested == 0  # requested once, not on every tick

    # A day whose week was never built (first builds are the schedules' job): only its month.
    _built(instance, STG, "2024-03-20")
    last = evaluate_automation_conditions(defs=rollup_defs, instance=instance, cursor=quiet.cursor)
    assert _requested(last) == {
        "monthly_totals": ["2024-03-01"],
        "monthly_weekly_breakdown": ["2024-03-01"],
        "monthly_metrics": ["2024-03-01"],
    }


def test_catch_up_runs_on_declarative_automation(rollup_defs: Definitions) -> None:
    sensor = rollup_defs.get_sensor_def("rollup_catch_up_sensor")
    assert isinstance(sensor, AutomationConditionSensorDefinition)
    assert sensor.default_status is DefaultSensorStatus.RUNNING
    graph = rollup_defs.resolve_asset_graph()
    for key in (WEEKLY_TOTALS, WEEKLY, MONTHLY_TOTALS, MONTHLY, BREAKDOWN, CUSTOM):
        condition = graph.get(key).automation_condition
        assert condition is not None and condition.get_label() == CATCH_UP_LABEL, key
    assert graph.get(DAILY).automation_condition is None  # days: schedules and late data


def test_an_event_arriving_during_a_days_first_build_is_judged_after_it(
    sensors: dict[str, SensorDefinition],
    instance: DagsterInstance,
    week_built: tuple[list[Event], BatchHarness],
) -> None:
    # A day's first build runs; an event for that day arrives after the run started reading;
    # by the time the build is recorded, the high-water mark has moved more than the scan's
    # one-hour overlap past that event. The run's start, held in the cursor, keeps the event
    # in the scan of the first tick after the run.
    events, harness = week_built
    sensor = sensors["late_data_sensor"]
    first = sensor(build_sensor_context(instance=instance))
    assert not first.run_requests

    run = create_run_for_test(
        instance, job_name="daily_rollups_job", status=DagsterRunStatus.STARTED
    )  # building 2024-03-04
    arrived = datetime.now(UTC) + timedelta(minutes=1)  # after the run started reading
    harness.load(
        [
            _late(next(e for e in events if e.event_date == date(2024, 3, 4)), "during", arrived),
            # a late event of a built day, hours later, moves the high-water mark on
            _late(
                next(e for e in events if e.event_date == date(2024, 2, 27)),
                "later",
                arrived + timedelta(hours=3),
            ),
        ]
    )
    during = sensor(build_sensor_context(instance=instance, cursor=first.cursor))
    assert [r.partition_key for r in during.run_requests] == ["2024-02-27"]  # 03-04: unbuilt

    _built(instance, STG, "2024-03-04")  # the run records its build (before the event came)
    _built(instance, DAILY, "2024-03-04")
    instance.delete_run(run.run_id)  # and is over
    after = sensor(build_sensor_context(instance=instance, cursor=during.cursor))
    assert "2024-03-04" in {r.partition_key for r in after.run_requests}
    assert LateDataCursor.parse(after.cursor).holds == ()  # no run in progress any more

    # Without the held start, the scan would begin an hour before the high-water mark, two
    # hours after the event: the day would never be re-run.
    unheld = LateDataCursor(LateDataCursor.parse(during.cursor).high_water).serialize()
    missed = sensor(build_sensor_context(instance=instance, cursor=unheld))
    assert "2024-03-04" not in {r.partition_key for r in missed.run_requests}


def test_late_data_cursor_reads_the_format_before_holds() -> None:
    when = datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert LateDataCursor.parse(when.isoformat()) == LateDataCursor(when)
    held = LateDataCursor(when, (when - timedelta(hours=5),))
    assert LateDataCursor.parse(held.serialize()) == held
    assert held.scan_from() == when - timedelta(hours=6)
    assert LateDataCursor(when).scan_from([when - timedelta(hours=2)]) == when - timedelta(hours=3)
    assert LateDataCursor().scan_from([when]) is None  # first tick: everything
