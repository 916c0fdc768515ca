"""The Dagster code location: `defs`, built from the environment by `build_definitions()`.

`dagster dev -w workspace.yaml` and `dagster definitions validate -m orchestration.definitions`
load `defs`. Tests and tools build their own with other settings (week start, retry delay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagster import (
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    SensorDefinition,
)

from orchestration.alerts import run_failure_alert_sensor
from orchestration.custom_metrics_assets import (
    build_custom_metrics_asset,
    custom_metrics_job,
    custom_metrics_schedule,
)
from orchestration.dbt_assets import build_grain_assets
from orchestration.freshness import freshness_checks, freshness_sensor
from orchestration.instance import batch_event_writes
from orchestration.jobs import rollup_job
from orchestration.partitions import Grain, partitions_def
from orchestration.project import prepared_project
from orchestration.realtime_ops import (
    cache_invalidation_sensor,
    realtime_jobs,
    realtime_resources,
    realtime_schedules,
)
from orchestration.resources import dbt_resource
from orchestration.schedules import rollup_schedule
from orchestration.sensors import late_data_sensor
from orchestration.settings import OrchestrationSettings

if TYPE_CHECKING:
    from orchestration.dagster_types import AssetJob, PartitionedSchedule

batch_event_writes()  # every process that loads this code location stores events in batches

RAW_EVENTS = AssetSpec(
    key=["raw", "events"],
    group_name="sources",
    description="Product events as the application writes them (docs/reference.md). Never modified "
    "here; the dbt source tests on it run as asset checks of the daily rollups.",
    kinds={"sql"},
)


@dataclass(frozen=True)
class RollupDefinitions:
    """The pieces `build_definitions` assembles, by grain, for tools and tests."""

    assets: dict[Grain, AssetsDefinition]
    jobs: dict[Grain, AssetJob]
    schedules: dict[Grain, PartitionedSchedule]
    sensors: list[SensorDefinition]
    custom_metrics: AssetsDefinition
    custom_metrics_job: AssetJob
    custom_metrics_schedule: PartitionedSchedule


def build_rollups(settings: OrchestrationSettings) -> RollupDefinitions:
    """Assets, jobs, schedules and sensors for the three grains (and the custom metrics)."""
    project = prepared_project()
    assets = {grain: build_grain_assets(grain, settings, project) for grain in Grain}
    jobs = {grain: rollup_job(grain, assets[grain]) for grain in Grain}
    schedules = {grain: rollup_schedule(grain, jobs[grain]) for grain in Grain}
    custom = build_custom_metrics_asset(settings)
    custom_job = custom_metrics_job(custom)
    sensors = [
        late_data_sensor(jobs[Grain.DAY], partitions_def(Grain.DAY, settings)),
        catch_up_sensor(),
        cache_invalidation_sensor(),
    ]
    return RollupDefinitions(
        assets, jobs, schedules, sensors, custom, custom_job, custom_metrics_schedule(custom_job)
    )


def catch_up_sensor() -> AutomationConditionSensorDefinition:
    """Evaluates the automation conditions of the rollups and custom metrics (see
    `orchestration.translator.catch_up_condition`) every minute, on by default."""
    return AutomationConditionSensorDefinition(
        "rollup_catch_up_sensor",
        target=AssetSelection.all(),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Rebuilds weeks, months and custom metrics whose days were rebuilt.",
    )


def definitions_for(rollups: RollupDefinitions) -> Definitions:
    """The code location holding these rollups, the raw events and the dbt resource."""
    checks = freshness_checks(rollups.assets)
    return Definitions(
        assets=[RAW_EVENTS, *rollups.assets.values(), rollups.custom_metrics],
        jobs=[*rollups.jobs.values(), rollups.custom_metrics_job, *realtime_jobs()],
        schedules=[
            *rollups.schedules.values(),
            rollups.custom_metrics_schedule,
            *realtime_schedules(),
        ],
        asset_checks=checks,
        sensors=[*rollups.sensors, run_failure_alert_sensor(), freshness_sensor(checks)],
        resources={"dbt": dbt_resource(), **realtime_resources()},
    )


def build_definitions(settings: OrchestrationSettings | None = None) -> Definitions:
    """The whole code location for the given settings (default: from the environment)."""
    return definitions_for(build_rollups(settings or OrchestrationSettings.from_env()))


defs = build_definitions()
