"""Run the project's dbt commands in-process, with the run window as `--vars`.

Used by the demo, the tests and the CLI; Dagster runs dbt through dagster-dbt instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from warehouse.connection import open_warehouse
from warehouse.test_failures import failed_tests_rows, is_failed_test, with_failing_rows

DBT_PROJECT_DIR = Path(
    os.environ.get("METRICS_DBT_PROJECT_DIR", Path(__file__).resolve().parents[1] / "dbt_project")
)


class DbtRunError(RuntimeError):
    """A dbt command failed; the message lists each failing node and why."""


@dataclass
class DbtRunSummary:
    """What one dbt invocation did: node name -> status, rows written per model, and the
    seconds its nodes spent executing (summed over threads)."""

    statuses: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    node_seconds: float = 0.0


def window_vars(start: date, end: date) -> dict[str, str]:
    """`--vars` for the half-open window [start, end)."""
    if start >= end:
        raise ValueError(f"window start {start} must be before its end {end} (half-open)")
    return {"min_date": start.isoformat(), "max_date": end.isoformat()}


def run_dbt(
    command: str = "build",
    *,
    vars: dict[str, Any] | None = None,
    select: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    target_path: str | os.PathLike[str] | None = None,
) -> DbtRunSummary:
    """Invoke dbt (build/run/test/...) on the project; raise DbtRunError on any failure."""
    from dbt.cli.main import dbtRunner

    args = [
        command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        os.environ.get("METRICS_TARGET", "duckdb") or "duckdb",
        "--quiet",
    ]
    if target_path is not None:
        args += ["--target-path", str(target_path)]
    if vars:
        args += ["--vars", json.dumps(vars)]
    if select:
        args += ["--select", *select]
    args += list(extra_args)
    result = dbtRunner().invoke(args)
    summary = DbtRunSummary()
    failures: list[str] = []
    failed_tests: dict[int, str] = {}  # index in failures -> the test's compiled SQL
    for node_result in getattr(result.result, "results", None) or []:
        node = getattr(node_result, "node", None)
        name = getattr(node, "name", "?")
        status = str(getattr(node_result, "status", ""))
        summary.statuses[name] = status
        summary.node_seconds += float(getattr(node_result, "execution_time", 0.0) or 0.0)
        response = getattr(node_result, "adapter_response", None) or {}
        if isinstance(response, dict) and response.get("rows_affected") is not None:
            summary.rows[name] = int(response["rows_affected"])
        if status.lower() in ("error", "fail", "runtimeerr", "runtime error"):
            failures.append(f"{name}: {status}: {getattr(node_result, 'message', '')}")
            compiled_sql = getattr(node, "compiled_code", None)
            if is_failed_test(str(getattr(node, "resource_type", "")), status) and compiled_sql:
                failed_tests[len(failures) - 1] = str(compiled_sql)
    for index, found in _found_by_tests(failed_tests).items():
        failures[index] = with_failing_rows(failures[index], found)
    if not result.success:
        detail = "; ".join(failures) if failures else str(result.exception)
        raise DbtRunError(f"dbt {command} failed: {detail}")
    return summary


def _found_by_tests(failed_tests: dict[int, str]) -> dict[int, str]:
    """What each failed test found (a note if the warehouse cannot be opened to read it)."""
    if not failed_tests:
        return {}
    try:
        with open_warehouse() as wh:
            return failed_tests_rows(wh, failed_tests)
    except Exception as error:  # the failures themselves are reported anyway
        return dict.fromkeys(failed_tests, f"(the warehouse could not be opened: {error})")
