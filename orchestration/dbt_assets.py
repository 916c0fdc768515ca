"""One `@dbt_assets` per grain: a run's partition window [min_date, max_date) becomes one
`dbt build --vars '{min_date: ..., max_date: ...}'` of the grain's models, exactly what an
analytics engineer types to recompute a window from the command line.

A run over many partitions (a backfill) is a single dbt invocation over the whole window
(`BackfillPolicy.single_run()`): dbt's start-up is paid once, not per partition. All grains
share one concurrency pool, limited to 1 in the instance config, so DuckDB never sees two writers.
Each attempt is written to the audit log; a failed or partial dbt run raises after reporting what
it did write, so the retry policy runs it again.
"""

import json
import shutil
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, Literal

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MetadataValue,
    Output,
)
from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject, dbt_assets

from orchestration.audit_log import AuditEntry, AuditLog, JobStatus
from orchestration.dbt_results import DbtOutcome, parse_run_results
from orchestration.metadata import (
    count_rows_matching,
    latest_period_with_rows,
    movers_markdown,
    top_movers,
)
from orchestration.partitions import Grain, partitions_def
from orchestration.retry import rollup_retry_policy
from orchestration.settings import OrchestrationSettings
from orchestration.translator import ASSET_PREFIX, MetricsDbtTranslator
from orchestration.warehouse_access import open_warehouse
from warehouse import Warehouse
from warehouse.dbt_runner import window_vars
from warehouse.marts import rollup_for
from warehouse.test_failures import failed_tests_rows

WAREHOUSE_POOL = "metrics_warehouse"
# dbt unit tests check the SQL logic against fixed inputs: they run in `make test` and from the
# dbt CLI, and, as dbt recommends, not again in every production run.
BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]
SOURCE_SELECTION = "source:raw"
MOVERS_MODELS = frozenset(rollup_for(grain).name for grain in Grain)


def dbt_selection(grain: Grain) -> str:
    """The dbt selection of a grain; daily also selects the source so its tests run first."""
    selection = f"tag:{grain.adjective}"
    return f"{selection} {SOURCE_SELECTION}" if grain is Grain.DAY else selection


def model_output_name(model: str) -> str:
    """The output name dagster-dbt gives a model's asset (`metrics__<model>`)."""
    return AssetKey([ASSET_PREFIX, model]).to_python_identifier()


def _models(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        props["name"]: props
        for props in manifest.get("nodes", {}).values()
        if props.get("resource_type") == "model"
    }


def _artifact(
    invocation: DbtCliInvocation, name: Literal["manifest.json", "run_results.json"]
) -> dict[str, Any] | None:
    try:
        return invocation.get_artifact(name)
    except (FileNotFoundError, ValueError):
        return None


def _process_error(invocation: DbtCliInvocation) -> str | None:
    if invocation.is_successful():
        return None
    error = invocation.get_error()
    return str(error) if error else "dbt exited with an error"


def _model_metadata(
    wh: Warehouse,
    outcome: DbtOutcome,
    models: Mapping[str, Mapping[str, Any]],
    grain: Grain,
    window: tuple[date, date],
) -> dict[str, dict[str, Any]]:
    """Metadata per written model: rows written, when its SQL ran and, for rollups, the top
    growth movers of the latest period in the window that has data. `models` comes from the
    run's own manifest, parsed with the run's window, so a model's incremental_predicates name
    the rows it owns."""
    start, end = window
    by_model: dict[str, dict[str, Any]] = {}
    written = {node.name for node in outcome.written_models}
    last_period = (
        latest_period_with_rows(wh, grain, start, end) if written & MOVERS_MODELS else None
    )
    for node in outcome.written_models:
        props = models.get(node.name, {})
        entry: dict[str, Any] = {}
        rows = node.rows_affected
        source = "dbt adapter_response.rows_affected"
        predicates = (props.get("config") or {}).get("incremental_predicates")
        if rows is None and predicates:
            rows = count_rows_matching(wh, node.name, predicates)
            source = "rows the run's window owns"
        if rows is not None:
            entry["rows_written"] = MetadataValue.int(rows)
            entry["rows_written_from"] = MetadataValue.text(source)
        if node.executed is not None:  # when the SQL ran: overlaps show dbt's threads at work
            entry["dbt_execute_started_at"] = MetadataValue.timestamp(node.executed[0])
            entry["dbt_execute_completed_at"] = MetadataValue.timestamp(node.executed[1])
        if node.name in MOVERS_MODELS and last_period is not None:
            movers = top_movers(wh, grain, last_period)
            entry["top_growth_movers"] = MetadataValue.md(
                movers_markdown(grain, last_period, movers)
            )
        by_model[node.name] = entry
    return by_model


def _close_abandoned_attempts(context: AssetExecutionContext, audit: AuditLog) -> None:
    """Close audit rows left RUNNING by workers that were killed (see AuditLog.close_abandoned)."""

    def run_is_active(run_id: str) -> bool:
        run = context.instance.get_run_by_id(run_id)
        return run is not None and not run.is_finished

    try:
        closed = audit.close_abandoned(run_is_active, context.run.run_id, context.retry_number + 1)
    except Exception as error:  # bookkeeping of other attempts never blocks this one
        context.log.warning(f"could not check the audit log for abandoned attempts: {error}")
        return
    if closed:
        context.log.warning(
            f"closed {closed} audit log row(s) left RUNNING by workers that stopped without "
            "recording their end; they are FAILED now"
        )


def materialize_window(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    grain: Grain,
) -> Iterator[Any]:
    """Build the run's partition window with dbt, log the attempt, attach metadata, yield events."""
    keys = list(context.partition_keys)
    time_window = context.partition_time_window
    start, end = time_window.start.date(), time_window.end.date()
    audit = AuditLog()
    _close_abandoned_attempts(context, audit)
    log_id = audit.start(
        AuditEntry(
            job_name=context.run.job_name,
            grain=grain.adjective,
            partition_range_start=date.fromisoformat(keys[0]),
            partition_range_end=date.fromisoformat(keys[-1]),
            window_start=start,
            window_end=end,
            dagster_run_id=context.run.run_id,
            attempt=context.retry_number + 1,
        )
    )
    context.log.info(
        f"{grain.adjective} rollups for {len(keys)} partition(s) {keys[0]} .. {keys[-1]}: "
        f"dbt build over [{start}, {end}), attempt {context.retry_number + 1}"
    )
    try:
        args = [*BUILD_ARGS, "--vars", json.dumps(window_vars(start, end))]
        invocation = dbt.cli(args, context=context, raise_on_error=False)
        events = list(invocation.stream())
        outcome = parse_run_results(
            _artifact(invocation, "run_results.json"), _process_error(invocation)
        )
        extra: dict[str, dict[str, Any]] = {}
        try:  # one connection (on Spark, reading what dbt has just written) for both reads
            with open_warehouse() as wh:
                outcome.failing_rows = failed_tests_rows(wh, outcome.failed_tests_sql)
                models = _models(_artifact(invocation, "manifest.json") or {})
                extra = _model_metadata(wh, outcome, models, grain, (start, end))
        except Exception as error:  # details; never fail a good build over them
            context.log.warning(
                f"could not read the failed tests' rows or the materialization metadata: {error}"
            )
    except BaseException as error:  # incl. a cancelled run: the attempt did not complete
        try:
            audit.finish(log_id, JobStatus.FAILED, error=f"{type(error).__name__}: {error}")
        except Exception as audit_error:  # keep the original error; say the log is incomplete
            context.log.error(f"could not close audit log row {log_id}: {audit_error}")
        raise
    status = outcome.status()
    rows_written = sum(
        int(meta["rows_written"].value) for meta in extra.values() if "rows_written" in meta
    )
    audit.finish(log_id, status, rows_written=rows_written, error=outcome.error_text())

    common = {
        "window": MetadataValue.text(f"[{start.isoformat()}, {end.isoformat()})"),
        "window_start": MetadataValue.text(start.isoformat()),
        "window_end": MetadataValue.text(end.isoformat()),
        "partitions_in_run": MetadataValue.int(len(keys)),
    }
    outputs = {model_output_name(name): meta for name, meta in extra.items()}
    for event in events:
        if isinstance(event, Output):
            event = event.with_metadata(
                {**event.metadata, **common, **outputs.get(event.output_name, {})}
            )
        yield event

    if status is not JobStatus.COMPLETED:
        raise Failure(
            description=(
                f"dbt build of the {grain.adjective} rollups over [{start}, {end}) ended "
                f"{status.value}:\n{outcome.error_text()}"
            ),
            metadata={"status": status.value, "window": f"[{start}, {end})"},
        )
    shutil.rmtree(invocation.target_path, ignore_errors=True)  # kept on failure, for debugging


def build_grain_assets(
    grain: Grain, settings: OrchestrationSettings, project: DbtProject
) -> AssetsDefinition:
    """The dbt models of one grain (selected by tag) as one partitioned multi-asset."""

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=dbt_selection(grain),
        name=f"{grain.adjective}_rollups",
        partitions_def=partitions_def(grain, settings),
        dagster_dbt_translator=MetricsDbtTranslator(),
        backfill_policy=BackfillPolicy.single_run(),
        retry_policy=rollup_retry_policy(settings),
        pool=WAREHOUSE_POOL,
    )
    def _rollups(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        yield from materialize_window(context, dbt, grain)

    return _rollups
