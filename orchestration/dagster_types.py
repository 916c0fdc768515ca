"""Type names for objects that Dagster's public functions return but Dagster does not export.

`define_asset_job` returns an `UnresolvedAssetJobDefinition`, and
`build_schedule_from_partitioned_job` a `ScheduleDefinition` or an
`UnresolvedPartitionedAssetScheduleDefinition`; in Dagster 1.13 the two unresolved classes live
only in private modules. Annotating the functions that build and pass them around needs their
names, so this module, and only this one, imports them from there, for the type checker only
(never at run time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from dagster import ScheduleDefinition
    from dagster._core.definitions.partitions.partitioned_schedule import (
        UnresolvedPartitionedAssetScheduleDefinition,
    )
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

    AssetJob: TypeAlias = UnresolvedAssetJobDefinition
    PartitionedSchedule: TypeAlias = (
        UnresolvedPartitionedAssetScheduleDefinition | ScheduleDefinition
    )
