"""Schedules built from the partitioned jobs: each tick runs the latest complete period.

The tick's time of day and weekday (or day of month) are set on the schedule alone; partitions
keep their UTC-midnight boundaries, and the schedules run in the partitions' time zone (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagster import DefaultScheduleStatus, build_schedule_from_partitioned_job

from orchestration.partitions import Grain

if TYPE_CHECKING:
    from orchestration.dagster_types import AssetJob, PartitionedSchedule


@dataclass(frozen=True)
class Tick:
    """When a schedule ticks (UTC, on the hour): every day, or one weekday (0 = Sunday, as in
    cron), or one day of the month."""

    hour: int
    day_of_week: int | None = None
    day_of_month: int | None = None

    @property
    def cron(self) -> str:
        day = "*" if self.day_of_month is None else str(self.day_of_month)
        weekday = "*" if self.day_of_week is None else str(self.day_of_week)
        return f"0 {self.hour} {day} * {weekday}"


TICKS = {
    Grain.DAY: Tick(hour=2),  # 02:00: the previous day
    Grain.WEEK: Tick(hour=4, day_of_week=1),  # Monday 04:00: the previous week
    Grain.MONTH: Tick(hour=5, day_of_month=2),  # the 2nd at 05:00: the previous month
}


def schedule_name(grain: Grain) -> str:
    """`daily_rollups_schedule`, ... ."""
    return f"{grain.adjective}_rollups_schedule"


def rollup_schedule(grain: Grain, job: AssetJob) -> PartitionedSchedule:
    """Each tick requests the latest period that had ended by the tick's scheduled time."""
    tick = TICKS[grain]
    return build_schedule_from_partitioned_job(
        job,
        name=schedule_name(grain),
        minute_of_hour=0,
        hour_of_day=tick.hour,
        day_of_week=tick.day_of_week,
        day_of_month=tick.day_of_month,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"The previous {grain.value}'s {grain.adjective} rollups.",
        tags={"metrics/trigger": "schedule"},
    )
