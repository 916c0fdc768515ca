"""Sensors that keep the rollups current without anyone watching.

- `late_data_sensor`: source events that arrived after their day was built re-run that day.
- `rollup_catchup_sensor`: when days are rebuilt, the weeks and months that read them (the
  period itself and, for growth, the next one; see the translator's partition mapping) are
  rebuilt too, as one ranged run per grain. Only periods built before are caught up: first
  builds belong to the schedules and backfills.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.late_data import LateDataCursor, as_utc, ingestion_by_day, late_days
from orchestration.partitions import Grain, next_period_start
from orchestration.translator import ASSET_PREFIX
from orchestration.warehouse_access import open_warehouse
from warehouse import WarehouseConfig

STG_EVENTS_KEY = AssetKey([ASSET_PREFIX, "stg_events"])
DAILY_METRICS_KEY = AssetKey([ASSET_PREFIX, "daily_metrics"])
TRIGGER_TAG = "metrics/trigger"
CATCHUP_BATCH = 5000


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
    records = instance.get_run_records(
        filters=RunsFilter(job_name=job_name, statuses=IN_PROGRESS_RUN_STATUSES)
    )
    starts = []
    for record in records:
        began = record.start_time
        starts.append(
            datetime.fromtimestamp(began, UTC) if began else as_utc(record.create_timestamp)
        )
    return starts


def late_data_sensor(
    daily_job: UnresolvedAssetJobDefinition, daily_partitions: TimeWindowPartitionsDefinition
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
            with open_warehouse(config, read_only=config.target == "duckdb", wait_seconds=0) as wh:
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


def contiguous_ranges(grain: Grain, keys: Iterable[str]) -> list[tuple[str, str]]:
    """Sorted partition keys grouped into runs of consecutive periods: [(first, last), ...]."""
    ranges: list[tuple[str, str]] = []
    for key in sorted(set(keys)):
        following = next_period_start(grain, date.fromisoformat(ranges[-1][1])) if ranges else None
        if following is not None and following.isoformat() == key:
            ranges[-1] = (ranges[-1][0], key)
        else:
            ranges.append((key, key))
    return ranges


def stale_periods(
    instance: DagsterInstance,
    assets: AssetsDefinition,
    daily_partitions: TimeWindowPartitionsDefinition,
    changed_days: Mapping[str, int],
) -> set[str]:
    """Periods of `assets` built before (by storage id) a day they read was rebuilt."""
    partitions = assets.partitions_def
    assert isinstance(partitions, TimeWindowPartitionsDefinition)
    # No explicit mapping means Dagster's default between time partitions (same days: identity).
    mapping = assets.get_partition_mapping(STG_EVENTS_KEY) or TimeWindowPartitionMapping()
    reads: dict[str, int] = {}  # period -> newest storage id among its changed days
    for day, storage_id in changed_days.items():
        downstream = mapping.get_downstream_partitions_for_partitions(
            daily_partitions.subset_with_partition_keys([day]), daily_partitions, partitions
        )
        for period in downstream.get_partition_keys():
            reads[period] = max(reads.get(period, 0), storage_id)
    stale: set[str] = set()
    for asset_key in assets.keys:
        latest = _latest_storage_ids(instance, asset_key, set(reads))
        stale.update(period for period, sid in latest.items() if sid < reads[period])
    return stale


def rollup_catchup_sensor(
    daily_partitions: TimeWindowPartitionsDefinition,
    downstream: Sequence[tuple[Grain, AssetsDefinition, UnresolvedAssetJobDefinition]],
) -> SensorDefinition:
    """When days are rebuilt, rebuild what was built earlier from them: weeks and months (and
    each day's custom metrics), as one ranged run per downstream job."""

    @sensor(
        name="rollup_catchup_sensor",
        jobs=[job for _, _, job in downstream],
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Brings weekly and monthly rollups up to date after their days are rebuilt.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        after = int(context.cursor) if context.cursor else None
        records = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=STG_EVENTS_KEY, after_storage_id=after),
            limit=CATCHUP_BATCH,
            ascending=True,
        ).records
        if not records:
            return SkipReason("no day was rebuilt since the last tick")
        changed: dict[str, int] = {}
        for record in records:
            if record.partition_key:
                changed[record.partition_key] = max(
                    changed.get(record.partition_key, 0), record.storage_id
                )
        newest = records[-1].storage_id
        requests = []
        for grain, assets, job in downstream:
            stale = stale_periods(context.instance, assets, daily_partitions, changed)
            for first, last in contiguous_ranges(grain, stale):
                requests.append(
                    RunRequest(
                        job_name=job.name,
                        run_key=f"catchup:{grain.value}:{first}:{last}:{newest}",
                        tags={
                            ASSET_PARTITION_RANGE_START_TAG: first,
                            ASSET_PARTITION_RANGE_END_TAG: last,
                            TRIGGER_TAG: "catch_up",
                        },
                    )
                )
        return SensorResult(run_requests=requests, cursor=str(newest))

    return _sensor
