"""Running compiled metrics safely: cost class from EXPLAIN, read-only, bounded in time.

PostgreSQL: one `READ ONLY` transaction, `SET LOCAL statement_timeout` per statement (optionally
`SET LOCAL ROLE` to a role that can only read the allowed tables); cost is the planner's total
cost from plain `EXPLAIN (FORMAT JSON)` (never ANALYZE, so nothing runs to estimate).

DuckDB: a separate cursor in a `BEGIN TRANSACTION READ ONLY` transaction; cost is the summed
"Estimated Cardinality" of `EXPLAIN (FORMAT JSON)`; DuckDB has no statement timeout, so a
watchdog thread calls `interrupt()` on that cursor once the class's time is up.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from custom_metrics.compiler import CompiledMetric
from custom_metrics.errors import MetricExecutionError, MetricTimeoutError
from warehouse import Warehouse

_ROLE_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class CostClass(StrEnum):
    """How expensive a query looks before it runs; each class has its own timeout."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def _default_timeouts() -> Mapping[CostClass, int]:
    return MappingProxyType(
        {CostClass.LOW: 10_000, CostClass.MEDIUM: 60_000, CostClass.HIGH: 300_000}
    )


@dataclass(frozen=True)
class ExecutionPolicy:
    """Timeouts per cost class (ms) and where the classes start, per warehouse."""

    timeout_ms: Mapping[CostClass, int] = field(default_factory=_default_timeouts)
    postgres_cost_limits: tuple[float, float] = (50_000.0, 5_000_000.0)
    duckdb_rows_limits: tuple[float, float] = (5_000_000.0, 200_000_000.0)
    explain_timeout_ms: int = 10_000
    reader_role: str | None = None

    def __post_init__(self) -> None:
        for cost_class in CostClass:
            if int(self.timeout_ms.get(cost_class, 0)) <= 0:
                raise ValueError(f"timeout_ms needs a positive value for {cost_class}")
        if self.reader_role is not None and not _ROLE_RE.fullmatch(self.reader_role):
            raise ValueError("reader_role must be a plain lower-case role name")

    def classify(self, estimate: float, dialect: str) -> CostClass:
        low, medium = (
            self.postgres_cost_limits if dialect == "postgres" else self.duckdb_rows_limits
        )
        if estimate < low:
            return CostClass.LOW
        return CostClass.MEDIUM if estimate < medium else CostClass.HIGH

    def timeout_for(self, cost_class: CostClass) -> int:
        return int(self.timeout_ms[cost_class])


@dataclass(frozen=True)
class CostEstimate:
    """The planner's estimate (PG total cost, or DuckDB estimated rows) and its class."""

    cost_class: CostClass
    estimate: float
    unit: str


@dataclass(frozen=True)
class QueryResult:
    """Rows of one compiled metric with the cost and time it took."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    cost: CostEstimate
    timeout_ms: int
    duration_ms: int


class QueryFailure(MetricExecutionError):
    """A statement failed; carries the cost and timeout known so far for the audit trail."""

    def __init__(self, message: str, cost: CostEstimate | None, timeout_ms: int | None) -> None:
        super().__init__(message)
        self.cost = cost
        self.timeout_ms = timeout_ms


class QueryTimeout(QueryFailure, MetricTimeoutError):
    """A statement ran out of time."""


def _walk_plan(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.get("children", ()) or ())


def _duckdb_rows(plan_text: str) -> float:
    total = 0.0
    for root in json.loads(plan_text):
        for node in _walk_plan(root):
            value = (node.get("extra_info") or {}).get("Estimated Cardinality")
            if value is not None:
                total += float(value)
    return total


def _postgres_cost(plan: object) -> float:
    data = json.loads(plan) if isinstance(plan, str) else plan
    if not isinstance(data, list) or not data:
        raise MetricExecutionError("EXPLAIN returned no plan")
    return float(data[0]["Plan"]["Total Cost"])


def _is_pg_timeout(error: BaseException) -> bool:
    return getattr(error, "pgcode", None) == "57014"  # query_canceled


@contextmanager
def _watchdog(cursor: Any, timeout_ms: int) -> Iterator[threading.Event]:
    """Interrupt `cursor` repeatedly once `timeout_ms` has passed, until the block ends."""
    done, fired = threading.Event(), threading.Event()

    def guard() -> None:
        if done.wait(timeout_ms / 1000):
            return
        fired.set()
        while not done.is_set():
            cursor.interrupt()
            done.wait(0.01)

    thread = threading.Thread(target=guard, name="custom-metric-timeout", daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        done.set()
        thread.join()


class ReadOnlyRunner:
    """Runs compiled metrics of one warehouse under an ExecutionPolicy."""

    def __init__(self, warehouse: Warehouse, policy: ExecutionPolicy | None = None) -> None:
        self.warehouse = warehouse
        self.policy = policy or ExecutionPolicy()

    def run(self, queries: Sequence[CompiledMetric]) -> list[QueryResult]:
        """Estimate and run each query in one read-only transaction; all or nothing."""
        for query in queries:
            if query.dialect != self.warehouse.dialect:
                raise MetricExecutionError(
                    f"compiled for {query.dialect}, warehouse is {self.warehouse.dialect}"
                )
        if self.warehouse.dialect == "postgres":
            return self._run_postgres(queries)
        return self._run_duckdb(queries)

    def estimate(self, query: CompiledMetric) -> CostEstimate:
        """The cost class of one query, from EXPLAIN only (read-only, nothing executed)."""
        if self.warehouse.dialect == "postgres":
            with self._pg_read_only():
                return self._pg_estimate(query)
        cursor = self._duckdb_cursor()
        try:
            return self._duckdb_estimate(cursor, query)
        finally:
            self._duckdb_finish(cursor, commit=False)

    # PostgreSQL --------------------------------------------------------------------------

    @contextmanager
    def _pg_read_only(self) -> Iterator[None]:
        with self.warehouse.transaction():
            self.warehouse.execute("set transaction read only")
            if self.policy.reader_role:
                self.warehouse.execute(f"set local role {self.policy.reader_role}")
            self._pg_timeout(self.policy.explain_timeout_ms)
            yield

    def _pg_timeout(self, timeout_ms: int) -> None:
        self.warehouse.execute(f"set local statement_timeout = {int(timeout_ms)}")

    def _pg_estimate(self, query: CompiledMetric) -> CostEstimate:
        self._pg_timeout(self.policy.explain_timeout_ms)
        rows = self.warehouse.query("explain (format json) " + query.sql, query.params)
        cost = _postgres_cost(rows[0][0])
        return CostEstimate(self.policy.classify(cost, "postgres"), cost, "cost")

    def _run_postgres(self, queries: Sequence[CompiledMetric]) -> list[QueryResult]:
        results: list[QueryResult] = []
        cost: CostEstimate | None = None
        timeout: int | None = None
        try:
            with self._pg_read_only():
                for query in queries:
                    cost, timeout = None, None
                    cost = self._pg_estimate(query)
                    timeout = self.policy.timeout_for(cost.cost_class)
                    self._pg_timeout(timeout)
                    began = time.perf_counter()
                    rows, columns = self.warehouse.query_with_columns(query.sql, query.params)
                    elapsed = round((time.perf_counter() - began) * 1000)
                    results.append(QueryResult(columns, rows, cost, timeout, elapsed))
        except MetricExecutionError:
            raise
        except Exception as error:
            if _is_pg_timeout(error):
                raise QueryTimeout(
                    f"cancelled by statement_timeout after {timeout} ms "
                    f"(cost class {cost.cost_class if cost else 'unknown'})",
                    cost,
                    timeout,
                ) from error
            raise QueryFailure(f"{type(error).__name__}: {error}".strip(), cost, timeout) from error
        return results

    # DuckDB ------------------------------------------------------------------------------

    def _duckdb_cursor(self) -> Any:
        cursor = self.warehouse.raw.cursor()
        cursor.execute("set timezone = 'UTC'")
        cursor.execute("begin transaction read only")
        return cursor

    @staticmethod
    def _duckdb_finish(cursor: Any, *, commit: bool) -> None:
        # After an interrupt the transaction may already be gone; closing is what matters.
        with suppress(Exception):
            cursor.execute("commit" if commit else "rollback")
        cursor.close()

    def _duckdb_estimate(self, cursor: Any, query: CompiledMetric) -> CostEstimate:
        plan = cursor.execute("explain (format json) " + query.sql, query.params).fetchall()
        rows = sum(_duckdb_rows(str(text)) for _, text in plan)
        return CostEstimate(self.policy.classify(rows, "duckdb"), rows, "rows")

    def _run_duckdb(self, queries: Sequence[CompiledMetric]) -> list[QueryResult]:
        import duckdb

        results: list[QueryResult] = []
        cursor = self._duckdb_cursor()
        cost: CostEstimate | None = None
        timeout: int | None = None
        ok = False
        try:
            for query in queries:
                cost, timeout = None, None
                cost = self._duckdb_estimate(cursor, query)
                timeout = self.policy.timeout_for(cost.cost_class)
                began = time.perf_counter()
                with _watchdog(cursor, timeout) as fired:
                    try:
                        result = cursor.execute(query.sql, query.params)
                        columns = [d[0] for d in result.description or ()]
                        rows = [tuple(r) for r in result.fetchall()]
                    except duckdb.InterruptException as error:
                        if fired.is_set():
                            raise QueryTimeout(
                                f"interrupted after {timeout} ms (cost class {cost.cost_class})",
                                cost,
                                timeout,
                            ) from error
                        raise
                elapsed = round((time.perf_counter() - began) * 1000)
                results.append(QueryResult(columns, rows, cost, timeout, elapsed))
            ok = True
        except MetricExecutionError:
            raise
        except Exception as error:
            raise QueryFailure(f"{type(error).__name__}: {error}".strip(), cost, timeout) from error
        finally:
            self._duckdb_finish(cursor, commit=ok)
        return results
