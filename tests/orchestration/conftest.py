"""Fixtures for the orchestration tests: isolated warehouses and Dagster instances.

Each warehouse gets its own METRICS_SCHEMA / METRICS_SOURCE_SCHEMA (PostgreSQL: in this run's
database, dropped afterwards) or its own DuckDB file, and dbt's per-run target directories go to
a temporary directory. Building a warehouse through Dagster costs a dbt parse per grain, so the
built warehouses are module-scoped and shared by several tests; a test activates one with
`built.use(monkeypatch)`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, Definitions, instance_for_test
from dagster_dbt import DbtCliResource

from metrics_events import Event
from orchestration.audit_log import AuditLog, JobStatus
from orchestration.definitions import RollupDefinitions, build_rollups, definitions_for
from orchestration.partitions import Grain, available_keys, keys_overlapping
from orchestration.runner import RangeRun, run_partition_range
from orchestration.settings import OrchestrationSettings
from tests.batch.harness import BatchHarness
from warehouse import Warehouse, WarehouseConfig, connect

RETRY_DELAY_SECONDS = 0.5


def warehouse_env(
    target: str,
    tmp: Path,
    pg: dict[str, str] | None = None,
    spark: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment for one isolated warehouse (Spark: the test run's directories and shared
    metastore, tests/conftest.py spark_dirs)."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        "METRICS_TARGET": target,
        "METRICS_SCHEMA": f"metrics_o{suffix}",
        "METRICS_SOURCE_SCHEMA": f"raw_o{suffix}",
        "METRICS_DUCKDB_PATH": str(tmp / "warehouse.duckdb"),
        "METRICS_WEEK_START": "monday",
        "METRICS_PARTITIONS_START": "2024-01-01",
        "METRICS_RETRY_DELAY_SECONDS": str(RETRY_DELAY_SECONDS),
        "DBT_TARGET_PATH": str(tmp / "dbt_target"),
    }
    if pg:
        env.update(PGHOST=pg["host"], PGPORT=pg["port"], PGUSER=pg["user"], PGDATABASE=pg["dbname"])
    env.update(spark or {})
    return env


def drop_schemas(env: dict[str, str]) -> None:
    with connect(WarehouseConfig()) as wh:
        for schema in (env["METRICS_SCHEMA"], env["METRICS_SOURCE_SCHEMA"]):
            wh.execute(f"drop schema if exists {schema} cascade")


@dataclass
class DbtCalls:
    """Every dbt invocation made through dagster-dbt, as (op name, args, window), the window
    being the `--vars {min_date, max_date}` of the call (None, None without them)."""

    calls: list[tuple[str, list[str], tuple[str | None, str | None]]] = field(default_factory=list)

    def by_op(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op, _, _ in self.calls:
            counts[op] = counts.get(op, 0) + 1
        return counts


def counting_dbt_cli(current: dict[str, DbtCalls]) -> Callable[..., Any]:
    """A DbtCliResource.cli that records each call in `current["calls"]`."""
    original = DbtCliResource.cli

    def cli(self: DbtCliResource, args: list[str], **kwargs: Any) -> Any:
        context = kwargs.get("context")
        op = context.op_execution_context.op.name if context is not None else "?"
        window: tuple[str | None, str | None] = (None, None)
        if "--vars" in args:
            given = json.loads(args[list(args).index("--vars") + 1])
            window = (given.get("min_date"), given.get("max_date"))
        current["calls"].calls.append((op, list(args), window))
        return original(self, args, **kwargs)

    return cli


@dataclass
class BuiltWarehouse:
    """A warehouse built through Dagster, with the instance that recorded its runs."""

    target: str
    env: dict[str, str]
    events: list[Event]
    instance: DagsterInstance
    settings: OrchestrationSettings
    rollups: RollupDefinitions
    defs: Definitions
    runs: dict[Grain, RangeRun]
    dbt_calls: DbtCalls
    harness: BatchHarness

    def use(self, monkeypatch: pytest.MonkeyPatch) -> BuiltWarehouse:
        """Point the environment at this warehouse for the calling test."""
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        return self


def range_keys(grain: Grain, start: date, end: date, settings: OrchestrationSettings) -> list[str]:
    existing = set(available_keys(grain, settings))
    return [k for k in keys_overlapping(grain, start, end, settings) if k in existing]


@pytest.fixture(scope="module")
def build_warehouse(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., BuiltWarehouse]]:
    """Factory: load events, then backfill [start, end) for every grain (or those given), one
    run per grain.

    Every dbt invocation made while the module runs is counted in `dbt_calls`.
    """
    module_patch = pytest.MonkeyPatch()
    current = {"calls": DbtCalls()}
    module_patch.setattr(DbtCliResource, "cli", counting_dbt_cli(current))
    built_list: list[BuiltWarehouse] = []
    stack = contextlib.ExitStack()

    def build(
        target: str,
        events: list[Event],
        start: date,
        end: date,
        pg: dict[str, str] | None = None,
        spark: dict[str, str] | None = None,
        grains: tuple[Grain, ...] = tuple(Grain),
    ) -> BuiltWarehouse:
        tmp = tmp_path_factory.mktemp(f"orchestration_{target}")
        env = warehouse_env(target, tmp, pg, spark)
        calls = current["calls"] = DbtCalls()
        instance = stack.enter_context(instance_for_test())
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            harness = BatchHarness(
                target, env["METRICS_SCHEMA"], env["METRICS_SOURCE_SCHEMA"], tmp / "unused"
            )
            harness.load(events)
            settings = OrchestrationSettings.from_env()
            rollups = build_rollups(settings)
            defs = definitions_for(rollups)
            runs = {
                grain: run_partition_range(
                    defs, grain, range_keys(grain, start, end, settings), instance
                )
                for grain in grains
            }
        built = BuiltWarehouse(
            target, env, events, instance, settings, rollups, defs, runs, calls, harness
        )
        built_list.append(built)
        return built

    yield build
    for built in built_list:
        if built.target in ("postgres", "spark"):
            with pytest.MonkeyPatch.context() as patch:
                for key, value in built.env.items():
                    patch.setenv(key, value)
                drop_schemas(built.env)
    stack.close()
    module_patch.undo()


def assert_each_run_logged_completed(built: BuiltWarehouse) -> None:
    """One audit log row per grain's run: COMPLETED on its first attempt, with its partition
    range, rows written and times; every partition of the range recorded as materialized."""
    for grain, run in built.runs.items():
        assert run.success
        [entry] = AuditLog().entries(run.run_id)
        assert entry["status"] == JobStatus.COMPLETED
        assert entry["grain"] == grain.adjective and entry["attempt"] == 1
        assert entry["job_name"] == f"{grain.adjective}_rollups_job"
        assert entry["partition_range_start"] == date.fromisoformat(run.keys[0])
        assert entry["partition_range_end"] == date.fromisoformat(run.keys[-1])
        assert entry["rows_written"] > 0 and entry["duration_ms"] > 0
        assert entry["ended_at"] >= entry["started_at"] and entry["error"] is None
        assert set(run.materialized) == set(run.keys)


def assert_rollups_answer_like_the_events(wh: Warehouse, window: tuple[date, date]) -> None:
    """A custom metric over `window` reads the rollups (the audit log the Dagster runs wrote
    says they are fresh) and equals the same metric read from the events."""
    from custom_metrics import CustomMetricService, Principal, compile_metric

    counted = {
        "name": "events by type",
        "metric_type": "COUNT",
        "data_source": "events",
        "calculation_formula": "*",
        "dimensions": ["event_type"],
    }
    run = CustomMetricService(wh, Principal("analyst")).test_metric_definition(counted, *window)
    assert run.fallback_reason is None
    assert {"monthly_metrics", "daily_metrics"} <= set(run.answered_from.split("+"))
    events = compile_metric(
        counted, wh.dialect, *window, schema=wh.schema, week_start_index=0, use_rollups=False
    )
    assert sorted(run.rows) == sorted(tuple(r) for r in wh.query(events.sql, events.params))
    assert run.rows


def late_events(template: Event, n: int, ingested_at: datetime) -> list[Event]:
    """`n` new events of the template's day and entity type, ingested at `ingested_at` (one
    of them for a new entity)."""
    return [
        replace(
            template,
            event_id=f"late_{template.event_date}_{i}",
            actor_id=f"late_user_{i}",
            entity_id="asset_late" if i == 0 else template.entity_id,
            revenue_cents=100 * i,
            ingested_at=ingested_at,
        )
        for i in range(n)
    ]
