"""Custom metrics per daily partition: every active definition computed for each day, after the
day's rollups (`custom_metrics.calculate_all_active`, which stores into custom_metric_values).

A separate job (and schedule, an hour after the daily rollups) so a problem in one user-defined
metric never fails the rollups; one failing definition does not stop the others either: it is
reported in the metadata and the log, and the custom metrics audit trail has its error.
"""

import warnings
from datetime import timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from orchestration.dbt_assets import WAREHOUSE_POOL
from orchestration.partitions import Grain, partitions_def
from orchestration.retry import rollup_retry_policy
from orchestration.sensors import DAILY_METRICS_KEY, STG_EVENTS_KEY
from orchestration.settings import OrchestrationSettings
from orchestration.translator import ASSET_PREFIX, catch_up_condition
from orchestration.warehouse_access import open_warehouse

if TYPE_CHECKING:
    from orchestration.dagster_types import AssetJob, PartitionedSchedule

CUSTOM_METRICS_JOB = "custom_metrics_job"


def build_custom_metrics_asset(settings: OrchestrationSettings) -> AssetsDefinition:
    """The daily-partitioned asset `metrics/custom_metric_values`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # backfill_policy on @asset is beta
        return _custom_metrics_asset(settings)


def _custom_metrics_asset(settings: OrchestrationSettings) -> AssetsDefinition:
    @asset(
        key=[ASSET_PREFIX, "custom_metric_values"],
        deps=[STG_EVENTS_KEY, DAILY_METRICS_KEY],
        partitions_def=partitions_def(Grain.DAY, settings),
        backfill_policy=BackfillPolicy.single_run(),
        retry_policy=rollup_retry_policy(settings),
        pool=WAREHOUSE_POOL,
        group_name="custom_metrics",
        kinds={"python"},
        automation_condition=catch_up_condition(),
        description="Every active custom metric definition, computed for each day.",
    )
    def custom_metric_values(context: AssetExecutionContext) -> MaterializeResult[None]:
        from custom_metrics import calculate_all_active

        window = context.partition_time_window
        day, end = window.start.date(), window.end.date()
        computed = failed = rows = 0
        failures: list[str] = []
        while day < end:
            with open_warehouse() as wh:
                results = calculate_all_active(wh, day, day + timedelta(days=1))
            for result in results:
                if result.status == "SUCCESS":
                    computed += 1
                    rows += len(result.values)
                else:
                    failed += 1
                    failures.append(f"{day} {result.definition_id}: {result.error}")
            day += timedelta(days=1)
        if failures:
            context.log.warning("custom metrics that failed:\n" + "\n".join(failures[:50]))
        return MaterializeResult(
            metadata={
                "window": MetadataValue.text(f"[{window.start.date()}, {end})"),
                "calculations_succeeded": MetadataValue.int(computed),
                "calculations_failed": MetadataValue.int(failed),
                "values_written": MetadataValue.int(rows),
                **(
                    {"failures": MetadataValue.md("\n".join(f"- {f}" for f in failures[:20]))}
                    if failures
                    else {}
                ),
            }
        )

    return custom_metric_values


def custom_metrics_job(assets: AssetsDefinition) -> "AssetJob":
    """The daily-partitioned job of the custom metrics asset (ranges run as one run)."""
    return define_asset_job(
        name=CUSTOM_METRICS_JOB,
        selection=[assets],
        description="Compute the custom metrics for a day or a range of days.",
    )


def custom_metrics_schedule(job: "AssetJob") -> "PartitionedSchedule":
    """03:00 UTC, an hour after the daily rollups: the previous day's custom metrics."""
    return build_schedule_from_partitioned_job(
        job,
        name="custom_metrics_schedule",
        minute_of_hour=0,
        hour_of_day=3,
        default_status=DefaultScheduleStatus.RUNNING,
        description="The previous day's custom metrics, an hour after the daily rollups.",
    )
