"""Running compiled metrics safely: cost class from EXPLAIN, read-only, bounded in time.

One calculation (every bucket of a series) has one time limit, estimation included: the
EXPLAINs share `explain_timeout_ms`, then the buckets share the timeout of the dearest bucket's
cost class, counted from the start. A calculation that runs out stops with MetricTimeoutError.

PostgreSQL: one `READ ONLY` transaction, `SET LOCAL statement_timeout` per statement set to the
time left (optionally `SET LOCAL ROLE` to a role that can only read the allowed tables); cost is
the planner's total cost from plain `EXPLAIN (FORMAT JSON)` (never ANALYZE, so nothing runs).

DuckDB: a separate cursor in a `BEGIN TRANSACTION READ ONLY` transaction; cost is the summed
"Estimated Cardinality" of `EXPLAIN (FORMAT JSON)`; DuckDB has no statement timeout, so a
watchdog thread calls `interrupt()` on that cursor (for EXPLAIN too) once the time is up. DuckDB
honours an interrupt only between vector chunks and not while it folds constants at plan time,
so what could hold a CPU inside one chunk (expensive LIKE patterns, huge literals) is refused
by validation instead (custom_metrics.validation).

Spark: no transactions, so a statement runs only if sqlglot reads it as one query (a SELECT,
nothing that writes); cost is the bytes of the tables and relations the optimized plan reads
(`EXPLAIN COST`, leaves summed; a table without size statistics counts as Spark's default
8 EiB, so HIGH). The query's jobs carry a job tag (SparkContext.addJobTag, interrupt on cancel)
and the watchdog cancels that tag once the time is up (SparkContext.cancelJobsWithTag); the
session stays usable.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

import sqlglot
from sqlglot import exp

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
    spark_bytes_limits: tuple[float, float] = (256.0 * 2**20, 16.0 * 2**30)
    explain_timeout_ms: int = 10_000
    reader_role: str | None = None

    def __post_init__(self) -> None:
        for cost_class in CostClass:
            if int(self.timeout_ms.get(cost_class, 0)) <= 0:
                raise ValueError(f"timeout_ms needs a positive value for {cost_class}")
        if self.reader_role is not None and not _ROLE_RE.fullmatch(self.reader_role):
            raise ValueError("reader_role must be a plain lower-case role name")

    def classify(self, estimate: float, dialect: str) -> CostClass:
        low, medium = {
            "postgres": self.postgres_cost_limits,
            "duckdb": self.duckdb_rows_limits,
            "spark": self.spark_bytes_limits,
        }[dialect]
        if estimate < low:
            return CostClass.LOW
        return CostClass.MEDIUM if estimate < medium else CostClass.HIGH

    def timeout_for(self, cost_class: CostClass) -> int:
        return int(self.timeout_ms[cost_class])


@dataclass(frozen=True)
class CostEstimate:
    """The planner's estimate (PG total cost, DuckDB estimated rows, Spark bytes read) and
    its class."""

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


@dataclass
class _Progress:
    """The cost and time limit known so far in a calculation, for the audit of a failure."""

    cost: CostEstimate | None = None
    timeout: int | None = None


class _Deadline:
    """The time left for one calculation, in whole milliseconds (from a monotonic clock)."""

    def __init__(self, clock: Callable[[], float], budget_ms: int) -> None:
        self.clock = clock
        self.budget_ms = budget_ms
        self.started = clock()

    def extend_to(self, budget_ms: int) -> None:
        """Count `budget_ms` from the same start (estimation spent part of it already)."""
        self.budget_ms = budget_ms

    def left_ms(self) -> int:
        return int(self.budget_ms - (self.clock() - self.started) * 1000)


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


_SIZE_RE: Final = re.compile(r"sizeInBytes=([0-9.]+(?:E[+-]?[0-9]+)?) ?([KMGTPE]i)?B")
_UNITS: Final = {
    None: 1,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_WRITES: Final = (exp.DML, exp.DDL, exp.Command, exp.Set, exp.Use)


def _spark_bytes(plan_text: str) -> float:
    """Bytes read: the summed sizes of the leaves (tables, VALUES, ranges) of the optimized
    logical plan that `EXPLAIN COST` prints, one node a line, children indented."""
    section = plan_text.split("== Optimized Logical Plan ==", 1)[-1].split("\n== ", 1)[0]
    nodes = [line for line in section.splitlines() if "Statistics(" in line]
    total = 0.0
    for index, line in enumerate(nodes):
        depth = len(line) - len(line.lstrip(" :+-|"))
        following = nodes[index + 1] if index + 1 < len(nodes) else None
        if following is not None and len(following) - len(following.lstrip(" :+-|")) > depth:
            continue  # not a leaf
        found = _SIZE_RE.search(line)
        if found:
            total += float(found.group(1)) * _UNITS[found.group(2)]
    return total


def _require_spark_query(sql: str) -> None:
    """Spark has no read-only transaction: refuse anything but one query that writes nothing."""
    try:
        statements = sqlglot.parse(sql, read="spark")
    except sqlglot.errors.ParseError as error:
        raise QueryFailure(f"not a query Spark may run here: {error}", None, None) from None
    if (
        len(statements) != 1
        or not isinstance(statements[0], exp.Query)
        or any(isinstance(node, _WRITES) for node in statements[0].walk())
    ):
        raise QueryFailure(
            "read-only: on Spark a calculation runs exactly one query that writes nothing",
            None,
            None,
        )


def _is_pg_timeout(error: BaseException) -> bool:
    return getattr(error, "pgcode", None) == "57014"  # query_canceled


@contextmanager
def _watchdog(interrupt: Callable[[], Any], timeout_ms: int) -> Iterator[threading.Event]:
    """Call `interrupt` repeatedly once `timeout_ms` has passed, until the block ends."""
    done, fired = threading.Event(), threading.Event()

    def guard() -> None:
        if done.wait(timeout_ms / 1000):
            return
        fired.set()
        while not done.is_set():
            interrupt()
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

    def __init__(
        self,
        warehouse: Warehouse,
        policy: ExecutionPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.warehouse = warehouse
        self.policy = policy or ExecutionPolicy()
        self.clock = clock

    def run(self, queries: Sequence[CompiledMetric]) -> list[QueryResult]:
        """Estimate and run each query in one read-only transaction; all or nothing."""
        for query in queries:
            if query.dialect != self.warehouse.dialect:
                raise MetricExecutionError(
                    f"compiled for {query.dialect}, warehouse is {self.warehouse.dialect}"
                )
        if self.warehouse.dialect == "postgres":
            return self._run_postgres(queries)
        if self.warehouse.dialect == "spark":
            return self._run_spark(queries)
        return self._run_duckdb(queries)

    def estimate(self, query: CompiledMetric) -> CostEstimate:
        """The cost class of one query, from EXPLAIN only (read-only, nothing executed)."""
        deadline = _Deadline(self.clock, self.policy.explain_timeout_ms)
        if self.warehouse.dialect == "postgres":
            try:
                with self._pg_read_only():
                    return self._pg_estimate(query, deadline)
            except MetricExecutionError:
                raise
            except Exception as error:
                raise self._pg_failure(error, None, deadline) from error
        if self.warehouse.dialect == "spark":
            try:
                return self._spark_estimate(query, deadline)
            except MetricExecutionError:
                raise
            except Exception as error:
                raise _failure(error, None, None) from error
        cursor = self._duckdb_cursor()
        try:
            return self._duckdb_estimate(cursor, query, deadline)
        finally:
            self._duckdb_finish(cursor, commit=False)

    def _limit(self, costs: Sequence[CostEstimate], deadline: _Deadline) -> int:
        """The calculation's time limit: the dearest query's class, counted from the start."""
        dearest = max(costs, key=lambda c: c.estimate)
        timeout = self.policy.timeout_for(dearest.cost_class)
        deadline.extend_to(timeout)
        return timeout

    @staticmethod
    def _left(deadline: _Deadline, cost: CostEstimate | None, what: str) -> int:
        left = deadline.left_ms()
        if left <= 0:
            raise QueryTimeout(
                f"timeout: {what} ran out of its {deadline.budget_ms} ms time limit",
                cost,
                deadline.budget_ms,
            )
        return left

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
        self.warehouse.execute(f"set local statement_timeout = {max(1, int(timeout_ms))}")

    def _pg_estimate(self, query: CompiledMetric, deadline: _Deadline) -> CostEstimate:
        self._pg_timeout(self._left(deadline, None, "cost estimation"))
        rows = self.warehouse.query("explain (format json) " + query.sql, query.params)
        cost = _postgres_cost(rows[0][0])
        return CostEstimate(self.policy.classify(cost, "postgres"), cost, "cost")

    @staticmethod
    def _pg_failure(
        error: Exception, cost: CostEstimate | None, deadline: _Deadline
    ) -> QueryFailure:
        if _is_pg_timeout(error):
            return QueryTimeout(
                f"cancelled by statement_timeout: the calculation ran out of its "
                f"{deadline.budget_ms} ms time limit "
                f"(cost class {cost.cost_class if cost else 'not known yet'})",
                cost,
                deadline.budget_ms,
            )
        return QueryFailure(f"{type(error).__name__}: {error}".strip(), cost, deadline.budget_ms)

    def _run_postgres(self, queries: Sequence[CompiledMetric]) -> list[QueryResult]:
        results: list[QueryResult] = []
        deadline = _Deadline(self.clock, self.policy.explain_timeout_ms)
        cost: CostEstimate | None = None
        try:
            with self._pg_read_only():
                costs = [self._pg_estimate(query, deadline) for query in queries]
                timeout = self._limit(costs, deadline)
                for query, cost in zip(queries, costs, strict=True):
                    self._pg_timeout(self._left(deadline, cost, "the calculation"))
                    began = time.perf_counter()
                    rows, columns = self.warehouse.query_with_columns(query.sql, query.params)
                    elapsed = round((time.perf_counter() - began) * 1000)
                    results.append(QueryResult(columns, rows, cost, timeout, elapsed))
        except MetricExecutionError:
            raise
        except Exception as error:
            raise self._pg_failure(error, cost, deadline) from error
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

    def _duckdb_execute(
        self, cursor: Any, query: CompiledMetric, sql: str, left_ms: int, timeout: QueryTimeout
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement under the watchdog; `timeout` is raised if it fires."""
        import duckdb

        with _watchdog(cursor.interrupt, left_ms) as fired:
            try:
                result = cursor.execute(sql, query.params)
                columns = [d[0] for d in result.description or ()]
                return columns, [tuple(r) for r in result.fetchall()]
            except duckdb.InterruptException as error:
                if fired.is_set():
                    raise timeout from error
                raise

    def _duckdb_estimate(
        self, cursor: Any, query: CompiledMetric, deadline: _Deadline
    ) -> CostEstimate:
        left = self._left(deadline, None, "cost estimation")
        timeout = QueryTimeout(
            f"cost estimation was interrupted after {deadline.budget_ms} ms", None, None
        )
        _, plan = self._duckdb_execute(
            cursor, query, "explain (format json) " + query.sql, left, timeout
        )
        rows = sum(_duckdb_rows(str(text)) for _, text in plan)
        return CostEstimate(self.policy.classify(rows, "duckdb"), rows, "rows")

    def _run_duckdb(self, queries: Sequence[CompiledMetric]) -> list[QueryResult]:
        cursor = self._duckdb_cursor()
        deadline = _Deadline(self.clock, self.policy.explain_timeout_ms)
        progress = _Progress()
        ok = False
        try:
            results = self._estimate_and_run(
                queries,
                deadline,
                progress,
                lambda query: self._duckdb_estimate(cursor, query, deadline),
                lambda query, left, stop: self._duckdb_execute(
                    cursor, query, query.sql, left, stop
                ),
                "interrupted",
            )
            ok = True
        except MetricExecutionError:
            raise
        except Exception as error:
            message = f"{type(error).__name__}: {error}".strip()
            raise QueryFailure(message, progress.cost, progress.timeout) from error
        finally:
            self._duckdb_finish(cursor, commit=ok)
        return results

    def _estimate_and_run(
        self,
        queries: Sequence[CompiledMetric],
        deadline: _Deadline,
        progress: _Progress,
        estimate: Callable[[CompiledMetric], CostEstimate],
        execute: Callable[[CompiledMetric, int, QueryTimeout], tuple[list[str], list[Any]]],
        stopped: str,
    ) -> list[QueryResult]:
        """Price every query, then run each in the time the calculation has left (DuckDB and
        Spark, whose watchdog stops it); `progress` keeps the cost and limit for the audit."""
        costs = [estimate(query) for query in queries]
        timeout = progress.timeout = self._limit(costs, deadline)
        results: list[QueryResult] = []
        for index, (query, cost) in enumerate(zip(queries, costs, strict=True)):
            progress.cost = cost
            left = self._left(deadline, cost, "the calculation")
            stop = QueryTimeout(
                f"{stopped}: the calculation ran out of its {timeout} ms time limit "
                f"in query {index + 1} of {len(queries)} (cost class {cost.cost_class})",
                cost,
                timeout,
            )
            began = time.perf_counter()
            columns, rows = execute(query, left, stop)
            elapsed = round((time.perf_counter() - began) * 1000)
            results.append(QueryResult(columns, rows, cost, timeout, elapsed))
        return results

    # Spark -------------------------------------------------------------------------------

    def _spark_execute(
        self, sql: str, params: Mapping[str, Any], left_ms: int, timeout: QueryTimeout
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement whose jobs carry their own tag, cancelled once time is up;
        returns (columns, rows)."""
        context = self.warehouse.raw.sparkContext
        tag = f"custom-metric-{uuid.uuid4().hex}"
        interrupt_on_cancel = context.getLocalProperty("spark.job.interruptOnCancel")
        context.setInterruptOnCancel(True)
        context.addJobTag(tag)
        try:
            with _watchdog(lambda: context.cancelJobsWithTag(tag), left_ms) as fired:
                try:
                    rows, columns = self.warehouse.query_with_columns(sql, params)
                    return columns, rows
                except Exception as error:
                    if fired.is_set():
                        raise timeout from error
                    raise
        finally:
            context.removeJobTag(tag)
            context.setLocalProperty("spark.job.interruptOnCancel", interrupt_on_cancel)

    def _spark_estimate(self, query: CompiledMetric, deadline: _Deadline) -> CostEstimate:
        """EXPLAIN COST of a query that has passed the read-only check (every run starts here)."""
        _require_spark_query(query.sql)
        left = self._left(deadline, None, "cost estimation")
        timeout = QueryTimeout(
            f"cost estimation was cancelled after {deadline.budget_ms} ms", None, None
        )
        _, rows = self._spark_execute("explain cost " + query.sql, query.params, left, timeout)
        size = _spark_bytes(str(rows[0][0]))
        return CostEstimate(self.policy.classify(size, "spark"), size, "bytes")

    def _run_spark(self, queries: Sequence[CompiledMetric]) -> list[QueryResult]:
        deadline = _Deadline(self.clock, self.policy.explain_timeout_ms)
        progress = _Progress()
        try:
            return self._estimate_and_run(
                queries,
                deadline,
                progress,
                lambda query: self._spark_estimate(query, deadline),
                lambda query, left, stop: self._spark_execute(query.sql, query.params, left, stop),
                "cancelled",
            )
        except MetricExecutionError:
            raise
        except Exception as error:
            raise _failure(error, progress.cost, progress.timeout) from error


def _failure(error: Exception, cost: CostEstimate | None, timeout: int | None) -> QueryFailure:
    """A Spark error as a failure: its first line (the rest is the JVM's detail)."""
    detail = (str(error).strip().splitlines() or [""])[0]
    return QueryFailure(f"{type(error).__name__}: {detail}".strip(), cost, timeout)
