"""The code location loads (CLI and Python), and the instance configs are what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    Backoff,
    DagsterInstance,
    DailyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionMapping,
    WeeklyPartitionsDefinition,
)
from dagster._core.definitions.backfill_policy import BackfillPolicyType

from orchestration.instance import ensure_local_config
from orchestration.translator import period_mapping

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "target", [["-m", "orchestration.definitions"], ["-w", "workspace.yaml"]], ids=["module", "ws"]
)
def test_dagster_definitions_validate(tmp_path: Path, target: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_")}
    # A local instance: validation must not need the production storage in ./dagster.yaml.
    ensure_local_config(tmp_path)
    env["DAGSTER_HOME"] = str(tmp_path)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", *target],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_defs_assets_groups_checks_and_policies() -> None:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    metrics = {
        "stg_events": ("daily_rollups", DailyPartitionsDefinition),
        "daily_metrics": ("daily_rollups", DailyPartitionsDefinition),
        "weekly_metrics": ("weekly_rollups", WeeklyPartitionsDefinition),
        "monthly_metrics": ("monthly_rollups", MonthlyPartitionsDefinition),
        "monthly_weekly_breakdown": ("monthly_rollups", MonthlyPartitionsDefinition),
    }
    for model, (group, partitions_type) in metrics.items():
        node = graph.get(AssetKey(["metrics", model]))
        assert node.group_name == group
        assert isinstance(node.partitions_def, partitions_type)
        assert node.backfill_policy is not None
        assert node.backfill_policy.policy_type is BackfillPolicyType.SINGLE_RUN
        assert node.pools == {"metrics_warehouse"}
    assert graph.get(AssetKey(["raw", "events"])).is_external

    for grain in ("daily", "weekly", "monthly"):
        [assets] = [
            a
            for a in defs.assets or []
            if getattr(a, "node_def", None) and a.node_def.name == f"{grain}_rollups"
        ]  # type: ignore[union-attr]
        policy = assets.node_def.retry_policy  # type: ignore[union-attr]
        assert policy is not None and policy.max_retries == 3
        assert policy.backoff is Backoff.EXPONENTIAL
    checks = {key.name for key in graph.asset_check_keys}
    assert "raw_events_row_rules" in checks  # source tests
    assert "unique_stg_events_event_id" in checks
    assert "stg_events_event_on_one_day" in checks  # a singular test, on DuckDB and Spark
    assert {job.name for job in defs.resolve_all_job_defs()} >= {
        "daily_rollups_job",
        "weekly_rollups_job",
        "monthly_rollups_job",
    }
    assert {s.name for s in defs.sensors or []} >= {"late_data_sensor", "rollup_catch_up_sensor"}


def test_dagster_private_modules_are_imported_in_one_place_only() -> None:
    """Only orchestration/dagster_types.py names Dagster's private modules (for type names
    Dagster does not export), and only for the type checker."""
    packages = ("orchestration", "serving", "realtime", "custom_metrics", "warehouse")
    importing = sorted(
        str(path.relative_to(REPO))
        for package in packages
        for path in (REPO / package).rglob("*.py")
        if "dagster._" in path.read_text()
    )
    assert importing == ["orchestration/dagster_types.py"]
    assert "if TYPE_CHECKING:" in (REPO / "orchestration" / "dagster_types.py").read_text()


def test_totals_depend_on_their_days_and_growth_on_the_previous_period() -> None:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    stg = AssetKey(["metrics", "stg_events"])
    for model in ("weekly_totals", "monthly_totals", "monthly_weekly_breakdown"):
        mapping = graph.get_partition_mapping(AssetKey(["metrics", model]), stg)
        assert mapping == period_mapping()
    week = graph.get_parent_partition_keys_for_child(
        "2024-03-04", stg, AssetKey(["metrics", "weekly_totals"])
    ).partitions_subset.get_partition_keys()
    assert sorted(week) == [f"2024-03-{d:02d}" for d in range(4, 11)]  # the week's own days
    for totals, rollup in (
        ("weekly_totals", "weekly_metrics"),
        ("monthly_totals", "monthly_metrics"),
    ):
        mapping = graph.get_partition_mapping(
            AssetKey(["metrics", rollup]), AssetKey(["metrics", totals])
        )
        assert isinstance(mapping, TimeWindowPartitionMapping) and mapping.start_offset == -1
    weeks = graph.get_parent_partition_keys_for_child(
        "2024-03-04",
        AssetKey(["metrics", "weekly_totals"]),
        AssetKey(["metrics", "weekly_metrics"]),
    ).partitions_subset.get_partition_keys()
    assert sorted(weeks) == ["2024-02-26", "2024-03-04"]  # growth reads the previous week
    day = graph.get_parent_partition_keys_for_child(
        "2024-03-04", stg, AssetKey(["metrics", "daily_metrics"])
    ).partitions_subset.get_partition_keys()
    assert list(day) == ["2024-03-04"]


@pytest.mark.postgres
def test_production_instance_config_uses_postgres(pg_env: dict[str, str]) -> None:
    from dagster_postgres import PostgresRunStorage

    instance = DagsterInstance.from_config(str(REPO))
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert list(instance.get_runs(limit=1)) == []
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


def test_local_instance_config_is_written_once(tmp_path: Path) -> None:
    config = ensure_local_config(tmp_path / "home")
    config.write_text(config.read_text() + "# edited\n")
    ensure_local_config(tmp_path / "home")
    assert config.read_text().endswith("# edited\n")  # an existing config is never replaced
    instance = DagsterInstance.from_config(str(tmp_path / "home"))
    try:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


def test_workspace_points_at_the_definitions_module() -> None:
    import yaml

    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    [location] = workspace["load_from"]
    assert location["python_module"]["module_name"] == "orchestration.definitions"
    assert location["python_module"]["attribute"] == "defs"


def test_dbt_sees_the_warehouse_paths_the_project_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt runs inside dbt_project/: relative warehouse paths are made absolute first."""
    from orchestration.project import absolute_warehouse_paths

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METRICS_DUCKDB_PATH", ".data/warehouse.duckdb")
    monkeypatch.setenv("METRICS_SPARK_WAREHOUSE_DIR", "spark/warehouse")
    with absolute_warehouse_paths():
        assert os.environ["METRICS_DUCKDB_PATH"] == str(tmp_path / ".data/warehouse.duckdb")
        assert os.environ["METRICS_SPARK_WAREHOUSE_DIR"] == str(tmp_path / "spark/warehouse")
        assert os.environ["METRICS_SPARK_METASTORE_DIR"] == str(
            tmp_path / ".data/spark/metastore_db"
        )
    assert os.environ["METRICS_DUCKDB_PATH"] == ".data/warehouse.duckdb"
    monkeypatch.delenv("METRICS_DUCKDB_PATH")
    with absolute_warehouse_paths():
        assert os.environ["METRICS_DUCKDB_PATH"] == str(tmp_path / ".data/warehouse.duckdb")
    assert "METRICS_DUCKDB_PATH" not in os.environ
