"""Materialize a range of partitions of one grain in this process: one Dagster run, one dbt call.

Used by the CLI and the demo. A range run carries Dagster's partition-range tags, which is how
a single-run backfill is executed; a progress line is printed per partition afterwards, from the
run's recorded materializations.
"""

import contextlib
import io
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance, Definitions

from orchestration.audit_log import AuditLog
from orchestration.dbt_assets import WAREHOUSE_POOL
from orchestration.jobs import job_name
from orchestration.partitions import Grain
from orchestration.run_liveness import fail_dead_runs, owner_tags, reporting_pool_wait

Printer = Callable[[str], None]
# The tags that make one run cover a range of partitions (Dagster's single-run backfills).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def printer() -> Printer:
    """Progress lines to the standard output of now: a quiet run captures dbt's output while it
    executes, never these lines."""
    out = sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    return say


@dataclass
class RangeRun:
    """What a range run did: its run id, success, and per partition the assets it built."""

    grain: Grain
    keys: list[str]
    run_id: str
    success: bool
    materialized: dict[str, list[str]] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)


QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@contextlib.contextmanager
def _captured_stdout(enabled: bool) -> Iterator[None]:
    """Swallow dbt's re-emitted log lines (dagster-dbt writes them to stdout) when enabled."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def run_partition_range(
    defs: Definitions,
    grain: Grain,
    keys: list[str],
    instance: DagsterInstance,
    progress: Printer | None = None,
    *,
    verbose: bool = False,
) -> RangeRun:
    """Run the grain's job over `keys` (consecutive partitions) as one run.

    Without `verbose`, Dagster logs below WARNING and dbt's own output are not shown; the
    progress lines (and the audit log's error, on failure) are.
    """
    if not keys:
        raise ValueError("no partitions to run")
    say = progress or (lambda _line: None)
    job = defs.resolve_job_def(job_name(grain))
    say(f"{grain.adjective}: {len(keys)} partition(s) {keys[0]} .. {keys[-1]} in one run ...")
    run_config: dict[str, Any] = {} if verbose else QUIET_RUN_CONFIG
    fail_dead_runs(instance, say)
    run_id = str(uuid.uuid4())
    tags = owner_tags()
    with (
        reporting_pool_wait(instance, run_id, WAREHOUSE_POOL, say),
        _captured_stdout(not verbose),
    ):
        if len(keys) == 1:
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                partition_key=keys[0],
                tags=tags,
                run_id=run_id,
                raise_on_error=False,
            )
        else:
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                tags={
                    **tags,
                    PARTITION_RANGE_START_TAG: keys[0],
                    PARTITION_RANGE_END_TAG: keys[-1],
                },
                run_id=run_id,
                raise_on_error=False,
            )
    run = RangeRun(grain=grain, keys=keys, run_id=result.run_id, success=result.success)
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.partition:
            run.materialized.setdefault(materialization.partition, []).append(
                materialization.asset_key.path[-1]
            )
    try:
        run.audit = list(AuditLog().entries(result.run_id))
    except Exception as error:  # the audit log is informative here, not essential
        say(f"  (audit log not readable: {error})")
    for key in keys:
        built = sorted(set(run.materialized.get(key, [])))
        mark = "ok " if built else "-- "
        say(f"  {mark}{grain.value} {key}: " + (", ".join(built) if built else "not built"))
    for entry in run.audit:
        line = (
            f"  attempt {entry['attempt']}: {entry['status']}"
            f" in {(entry['duration_ms'] or 0) / 1000:.1f}s, {entry['rows_written'] or 0:,} rows"
        )
        say(line)
        if entry.get("error"):
            say("    " + str(entry["error"]).splitlines()[0][:300])
    say(f"{grain.adjective}: {'done' if run.success else 'FAILED'} (run {run.run_id})")
    return run
