"""Freshness checks per partition: each grain's latest complete partition must be materialized
by a deadline two hours after that grain's schedule runs (orchestration.schedules).

Dagster now prefers FreshnessPolicy objects on the assets; the time-partition checks used here
still judge exactly "is the latest complete partition there by the deadline", appear as asset
checks in the UI, and leave the asset definitions untouched, so the warning is silenced.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from dagster import (
    AssetChecksDefinition,
    AssetsDefinition,
    DefaultSensorStatus,
    SensorDefinition,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
)

from orchestration.partitions import Grain
from orchestration.schedules import TICKS

GRACE_HOURS = 2


def deadline_cron(grain: Grain) -> str:
    """The grain's schedule, GRACE_HOURS later on the same day (schedules run before 22:00)."""
    minute, hour, *rest = TICKS[grain].cron.split()
    later = int(hour) + GRACE_HOURS
    if later > 23:
        raise ValueError(f"the {grain.adjective} schedule runs too late for a same-day deadline")
    return " ".join([minute, str(later), *rest])


def freshness_checks(
    assets: Mapping[Grain, AssetsDefinition],
) -> list[AssetChecksDefinition]:
    """One time-partition freshness check per rollup asset, with its grain's deadline."""
    checks: list[AssetChecksDefinition] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        for grain, definition in assets.items():
            checks.extend(
                build_time_partition_freshness_checks(
                    assets=[definition], deadline_cron=deadline_cron(grain), timezone="UTC"
                )
            )
    return checks


def freshness_sensor(checks: Sequence[AssetChecksDefinition]) -> SensorDefinition:
    """Evaluates the freshness checks as their deadlines pass (running by default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        return build_sensor_for_freshness_checks(
            freshness_checks=list(checks),
            name="rollup_freshness_checks_sensor",
            default_status=DefaultSensorStatus.RUNNING,
        )
