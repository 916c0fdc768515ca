"""What one dbt invocation did, read from its run_results.json: per-node status, rows, errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestration.audit_log import JobStatus
from warehouse.test_failures import is_failed_test, with_failing_rows

FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


@dataclass(frozen=True)
class NodeResult:
    """One dbt node's result."""

    unique_id: str
    status: str
    message: str
    rows_affected: int | None
    executed: tuple[datetime, datetime] | None = None  # dbt's "execute" timing, when reported
    compiled_code: str | None = None  # the SQL dbt ran; for a data test, the failing rows' query

    @property
    def resource_type(self) -> str:
        return self.unique_id.split(".", 1)[0]

    @property
    def name(self) -> str:
        """The node's name: `model.<package>.<name>`, `test.<package>.<name>.<hash>`."""
        parts = self.unique_id.split(".")
        return parts[2] if len(parts) > 2 else self.unique_id

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def is_failed_test(self) -> bool:
        return is_failed_test(self.resource_type, self.status)

    @property
    def is_written_model(self) -> bool:
        return self.resource_type == "model" and self.status == "success"


@dataclass
class DbtOutcome:
    """The nodes of one invocation and the error text dbt printed, if any."""

    nodes: list[NodeResult] = field(default_factory=list)
    process_error: str | None = None
    failing_rows: dict[str, str] = field(default_factory=dict)  # failed test -> what it found

    @property
    def written_models(self) -> list[NodeResult]:
        return [node for node in self.nodes if node.is_written_model]

    @property
    def failed_nodes(self) -> list[NodeResult]:
        return [node for node in self.nodes if node.failed]

    @property
    def failed_tests_sql(self) -> dict[str, str]:
        """The query of each data test that found rows, by unique_id (see failing_rows)."""
        return {
            node.unique_id: node.compiled_code
            for node in self.nodes
            if node.is_failed_test and node.compiled_code
        }

    @property
    def succeeded(self) -> bool:
        return self.process_error is None and not self.failed_nodes

    def status(self) -> JobStatus:
        """COMPLETED, or FAILED when anything failed (docs/reference.md), even if some models were
        written first: their windows are rebuilt by the retry, and the error names them."""
        return JobStatus.COMPLETED if self.succeeded else JobStatus.FAILED

    def error_text(self) -> str | None:
        """Each failing node and dbt's message, then the process error; None on success."""
        if self.succeeded:
            return None
        lines = []
        for node in self.failed_nodes:
            message = f"{node.unique_id} [{node.status}]: {node.message}"
            lines.append(with_failing_rows(message, self.failing_rows.get(node.unique_id)))
        skipped = [node.unique_id for node in self.nodes if node.status == "skipped"]
        if skipped:
            lines.append("skipped because of the failures above: " + ", ".join(skipped))
        if self.process_error:
            lines.append(self.process_error)
        written = [node.unique_id for node in self.written_models]
        if written:
            lines.append(
                "written before the failure (the retry rebuilds their window): "
                + ", ".join(written)
            )
        return "\n".join(lines) or "dbt failed without reporting a node"


def _execute_timing(result: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    """When the node's SQL ran (the "execute" step of its timing), or None if not reported."""
    for step in result.get("timing") or []:
        if step.get("name") == "execute" and step.get("started_at") and step.get("completed_at"):
            try:
                started = datetime.fromisoformat(str(step["started_at"]).replace("Z", "+00:00"))
                completed = datetime.fromisoformat(str(step["completed_at"]).replace("Z", "+00:00"))
            except ValueError:
                return None
            return started, completed
    return None


def parse_run_results(
    run_results: Mapping[str, Any] | None, process_error: str | None
) -> DbtOutcome:
    """Build the outcome from run_results.json (None when dbt failed before writing it)."""
    nodes = []
    for result in (run_results or {}).get("results", []):
        response = result.get("adapter_response") or {}
        rows = response.get("rows_affected")
        nodes.append(
            NodeResult(
                unique_id=str(result.get("unique_id", "?")),
                status=str(result.get("status", "")).lower(),
                message=str(result.get("message") or ""),
                rows_affected=int(rows) if isinstance(rows, int) and rows >= 0 else None,
                executed=_execute_timing(result),
                compiled_code=result.get("compiled_code") or None,
            )
        )
    return DbtOutcome(nodes=nodes, process_error=process_error)
