"""Cron schedules that run the previous complete period of each grain.

The run time is set with `cron_schedule` alone; partitions keep their UTC-midnight boundaries.
"""

from datetime import UTC, date, datetime

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from orchestration.partitions import Grain, last_complete_period_key, partitions_def
from orchestration.settings import OrchestrationSettings

CRON_SCHEDULES = {
    Grain.DAILY: "0 2 * * *",  # 02:00 UTC: the previous day
    Grain.WEEKLY: "0 4 * * 1",  # Monday 04:00 UTC: the previous week
    Grain.MONTHLY: "0 5 2 * *",  # the 2nd at 05:00 UTC: the previous month
}


def schedule_name(grain: Grain) -> str:
    """`daily_rollups_schedule`, ... ."""
    return f"{grain.value}_rollups_schedule"


def rollup_schedule(
    grain: Grain, job: UnresolvedAssetJobDefinition, settings: OrchestrationSettings
) -> ScheduleDefinition:
    """Each tick requests the latest period that had ended by the tick's scheduled time."""
    first_key = partitions_def(grain, settings).get_first_partition_key() or "9999-12-31"

    @schedule(
        name=schedule_name(grain),
        job=job,
        cron_schedule=CRON_SCHEDULES[grain],
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"The previous {grain.period}'s {grain.value} rollups.",
    )
    def _schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        tick = context.scheduled_execution_time or datetime.now(UTC)
        key = last_complete_period_key(grain, tick.astimezone(UTC), settings.week_start_index)
        if date.fromisoformat(key) < date.fromisoformat(first_key):
            return SkipReason(f"{grain.period} {key} is before the first partition {first_key}")
        return RunRequest(
            run_key=f"{grain.value}:{key}",
            partition_key=key,
            tags={"metrics/trigger": "schedule"},
        )

    return _schedule
