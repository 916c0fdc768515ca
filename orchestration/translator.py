"""How dbt nodes become Dagster assets: keys, groups, partition mappings, checks.

- Models are `metrics/<model>`; the source is `raw/events` (the application's table).
- Each grain's models form a group (`daily_rollups`, ...).
- Cross-grain dependencies map time windows: a week's totals depend on its days, a month's on
  its days. A rollup with growth (`prev_*`) depends on its own period's totals and the previous
  one's. (The run of a period also refreshes the next period's growth, in SQL.)
- dbt tests are asset checks, source tests included (they guard the reserved '*' value).
- Weeks and months (and the custom metrics of a day) carry `catch_up_condition`: when the days
  they read are rebuilt, Dagster's automation rebuilds the periods that had been built before.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, AutomationCondition, PartitionMapping, TimeWindowPartitionMapping
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

from orchestration.partitions import Grain

ASSET_PREFIX = "metrics"
GROWTH_MARKER_COLUMN = "prev_event_count"


def grain_of(dbt_resource_props: Mapping[str, Any]) -> Grain | None:
    """The grain a dbt node belongs to, from its `daily` / `weekly` / `monthly` tag."""
    tags = set(dbt_resource_props.get("tags") or ())
    for grain in Grain:
        if grain.adjective in tags:
            return grain
    return None


def has_growth(dbt_resource_props: Mapping[str, Any]) -> bool:
    """Whether a model compares each period with the previous one (it has `prev_*` columns)."""
    return GROWTH_MARKER_COLUMN in (dbt_resource_props.get("columns") or {})


def period_mapping(start_offset: int = 0) -> TimeWindowPartitionMapping:
    """A period depends on the upstream partitions of its own time window, widened back by
    `start_offset` periods (-1: the previous period too, for growth)."""
    with warnings.catch_warnings():
        # allow_nonexistent_upstream_partitions is marked beta; the first period has no
        # previous period (and a first week may start before the first day), which must not be
        # an error.
        warnings.simplefilter("ignore")
        return TimeWindowPartitionMapping(
            start_offset=start_offset, end_offset=0, allow_nonexistent_upstream_partitions=True
        )


def catch_up_condition() -> AutomationCondition[Any]:
    """Rebuild a period that was built before once something it reads has been rebuilt (late
    data, a re-run of old days), when nothing upstream or itself is still running. Periods never
    built are left to the schedules and backfills; unlike `AutomationCondition.eager()`, any
    period qualifies, not only the latest."""
    return (
        ~AutomationCondition.missing()
        & AutomationCondition.any_deps_updated().since_last_handled()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ).with_label("catch up after its inputs were rebuilt")


class MetricsDbtTranslator(DagsterDbtTranslator):
    """The project's dbt -> Dagster mapping (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(
            settings=DagsterDbtTranslatorSettings(
                enable_asset_checks=True,
                enable_source_tests_as_checks=True,
            )
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return AssetKey([ASSET_PREFIX, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        grain = grain_of(dbt_resource_props)
        return f"{grain.adjective}_rollups" if grain else None

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> AutomationCondition[Any] | None:
        grain = grain_of(dbt_resource_props)
        if dbt_resource_props.get("resource_type") != "model" or grain in (None, Grain.DAY):
            return None
        return catch_up_condition()

    def get_partition_mapping(
        self,
        dbt_resource_props: Mapping[str, Any],
        dbt_parent_resource_props: Mapping[str, Any],
    ) -> PartitionMapping | None:
        if dbt_parent_resource_props.get("resource_type") == "source":
            return None  # the source is not partitioned: every partition reads it
        child, parent = grain_of(dbt_resource_props), grain_of(dbt_parent_resource_props)
        if child is None or parent is None:
            return None
        if child is not parent:
            return period_mapping()
        return period_mapping(-1) if has_growth(dbt_resource_props) else None
