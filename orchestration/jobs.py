"""One partitioned job per grain (a job cannot mix partition definitions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetsDefinition, AssetSelection, define_asset_job

from orchestration.partitions import Grain

if TYPE_CHECKING:
    from orchestration.dagster_types import AssetJob


def job_name(grain: Grain) -> str:
    """`daily_rollups_job`, `weekly_rollups_job`, `monthly_rollups_job`."""
    return f"{grain.adjective}_rollups_job"


def rollup_job(grain: Grain, assets: AssetsDefinition) -> AssetJob:
    """Every model of the grain and every dbt test on it (source tests included for daily)."""
    selection = AssetSelection.assets(*assets.keys) | AssetSelection.checks(*assets.check_keys)
    return define_asset_job(
        name=job_name(grain),
        selection=selection,
        description=f"Build the {grain.adjective} rollups for a partition or a range of them "
        "(one dbt invocation per run).",
        tags={"metrics/grain": grain.adjective},
    )
