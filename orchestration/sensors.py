"""Sensors that keep the rollups current without anyone watching.

- `late_data_sensor`: source events that arrived after their day was built re-run that day.

Weeks, months and custom metrics whose days were rebuilt are brought up to date by Dagster's
declarative automation (`orchestration.translator.catch_up_condition`), not by a sensor here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TimeWindowPartitionsDefinition,
    sensor,
)

from orchestration.late_data import EVENTS, LateDataCursor, ingestion_by_day, late_days
from orchestration.translator import ASSET_PREFIX
from orchestration.warehouse_access import open_warehouse
from warehouse import WarehouseConfig
from warehouse.timestamps import as_utc

if TYPE_CHECKING:
    from orchestration.dagster_types import AssetJob

STG_EVENTS_KEY = AssetKey([ASSET_PREFIX, "stg_events"])
DAILY_METRICS_KEY = AssetKey([ASSET_PREFIX, "daily_metrics"])
TRIGGER_TAG = "metrics/trigger"
# Runs that have not finished (DagsterRunStatus has no public list of them).
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _latest_storage_ids(
    instance: DagsterInstance, asset_key: AssetKey, partitions: set[str]
) -> Mapping[str, int]:
    if not partitions:
        return {}
    return instance.get_latest_storage_id_by_partition(
        asset_key, DagsterEventType.ASSET_MATERIALIZATION, partitions=partitions
    )


def built_at(
    instance: DagsterInstance, asset_keys: Sequence[AssetKey], days: Iterable[str]
) -> dict[str, datetime]:
    """Per day, when the oldest of its latest builds (over `asset_keys`) started reading.

    That is the start of the run that wrote the materialization, or the event's own time for
    materializations reported outside a run.
    """
    wanted = set(days)
    run_starts: dict[str, datetime | None] = {}
    result: dict[str, datetime] = {}
    for asset_key in asset_keys:
        latest = _latest_storage_ids(instance, asset_key, wanted)
        if not latest:
            continue
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, storage_ids=list(latest.values())),
            limit=len(latest),
        ).records
        for record in records:
            day = record.partition_key
            if day is None:
                continue
            when = datetime.fromtimestamp(record.timestamp, UTC)
            run_id = record.run_id
            if run_id:
                if run_id not in run_starts:
                    run = instance.get_run_record_by_id(run_id)
                    start = run.start_time if run else None
                    run_starts[run_id] = datetime.fromtimestamp(start, UTC) if start else None
                when = run_starts[run_id] or when
            result[day] = min(result.get(day, when), when)
    return result


def running_since(instance: DagsterInstance, job_name: str) -> list[datetime]:
    """When each run of `job_name` that has not finished started (or was created, if it has
    not started yet)."""
    records = instance.get_run_records(filters=RunsFilter(job_name=job_name, statuses=UNFINISHED))
    starts = []
    for record in records:
        began = record.start_time
        starts.append(
            datetime.fromtimestamp(began, UTC) if began else as_utc(record.create_timestamp)
        )
    return starts


def late_data_sensor(
    daily_job: AssetJob, daily_partitions: TimeWindowPartitionsDefinition
) -> SensorDefinition:
    """Request a daily run for exactly the days whose events arrived after they were built."""

    @sensor(
        name="late_data_sensor",
        job=daily_job,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Re-runs each day whose source events arrived after the day was built.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        cursor = LateDataCursor.parse(context.cursor)
        # Read before the source: a run that ends in between is held for the next tick too.
        running = running_since(context.instance, daily_job.name)
        config = WarehouseConfig()
        try:
            with open_warehouse(
                config,
                read_only=config.target == "duckdb",
                wait_seconds=0,
                reads=[f"{config.source_schema}.{EVENTS}"],
            ) as wh:
                ingestions = ingestion_by_day(wh, cursor.scan_from(running))
        except Exception as error:  # a run holds DuckDB, or the source is not there yet
            return SkipReason(f"source events not readable now: {error}")
        ingestions = [
            i for i in ingestions if daily_partitions.has_partition_key(i.day.isoformat())
        ]
        built = built_at(
            context.instance,
            (STG_EVENTS_KEY, DAILY_METRICS_KEY),
            (i.day.isoformat() for i in ingestions),
        )
        requests = [
            RunRequest(
                run_key=f"late:{i.day.isoformat()}:{i.max_ingested_at.isoformat()}",
                partition_key=i.day.isoformat(),
                tags={TRIGGER_TAG: "late_data"},
            )
            for i in late_days(ingestions, built)
        ]
        return SensorResult(
            run_requests=requests, cursor=cursor.advanced(ingestions, running).serialize()
        )

    return _sensor
