"""The custom-metric service: definitions with visibility and versions, test runs, calculation.

Every definition is validated and compiled (for every warehouse) in memory before anything is
written or run, so a definition that is not accepted never reaches the database. Calculations
run read-only with a timeout chosen from the query's EXPLAIN cost, and every one is audited.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from custom_metrics.access import SYSTEM, Principal, can_edit, can_view
from custom_metrics.compiler import CompiledMetric, PeriodBound, compile_metric, validate_definition
from custom_metrics.definitions import MetricDefinition, Visibility, parse_definition
from custom_metrics.errors import (
    MetricExecutionError,
    MetricNotFoundError,
    MetricPermissionError,
    MetricValidationError,
)
from custom_metrics.execution import (
    CostEstimate,
    ExecutionPolicy,
    QueryFailure,
    QueryResult,
    ReadOnlyRunner,
)
from custom_metrics.freshness import RollupFreshness
from custom_metrics.periods import whole_day_period
from custom_metrics.store import (
    CalculationRecord,
    MetricStore,
    StoredDefinition,
    StoredValue,
    Usage,
    new_definition_id,
)
from warehouse import Warehouse

SUCCESS = "SUCCESS"
FAILED = "FAILED"
SAMPLE_DAYS = 7


@dataclass(frozen=True)
class MetricValue:
    """One computed row: its period, the dimension values, the value."""

    period_start: date
    period_end: date
    dimensions: dict[str, Any]
    value: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CalculationResult:
    """The outcome of calculating one definition for one period (also in the audit trail)."""

    definition_id: str
    definition_version: int
    period_start: date
    period_end: date
    status: str
    values: list[MetricValue] = field(default_factory=list)
    duration_ms: int = 0
    cost: CostEstimate | None = None
    error: str | None = None
    calculation_id: str = ""
    answered_from: str | None = None
    fallback_reason: str | None = None


@dataclass(frozen=True)
class TestRun:
    """What `test_metric_definition` found: the SQL, the rows, the cost; nothing saved."""

    definition: MetricDefinition
    compiled: CompiledMetric
    columns: list[str]
    rows: list[tuple[Any, ...]]
    cost: CostEstimate
    duration_ms: int

    @property
    def answered_from(self) -> str:
        """The data source read: `events`, or the rollups that hold exactly the answer."""
        return self.compiled.answered_from

    @property
    def fallback_reason(self) -> str | None:
        """Why the events were read although the rollups could answer (not built or late
        data), or None."""
        return self.compiled.fallback_reason


def _values(
    result: QueryResult, compiled: CompiledMetric, start: date, end: date
) -> list[MetricValue]:
    """Rows as values: per period when the query answers a series, else all in [start, end)."""
    dims = compiled.dimension_columns
    lead = 2 if compiled.series else 0
    values: list[MetricValue] = []
    for row in result.rows:
        named = dict(zip(compiled.columns, row, strict=True))
        extra = {c: named[c] for c in compiled.columns[lead + len(dims) : -1]}
        lo, hi = (row[0], row[1]) if compiled.series else (start, end)
        values.append(MetricValue(lo, hi, {d: named[d] for d in dims}, row[-1], extra))
    return values


class CustomMetricService:
    """Definitions, test runs and calculations on one warehouse, acting for one principal."""

    def __init__(
        self,
        warehouse: Warehouse,
        principal: Principal,
        *,
        policy: ExecutionPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        ensure_tables: bool = True,
    ) -> None:
        self.warehouse = warehouse
        self.principal = principal
        self.store = MetricStore(warehouse)
        self.runner = ReadOnlyRunner(warehouse, policy)
        self.freshness = RollupFreshness(warehouse)
        self.clock = clock or (lambda: datetime.now(UTC))
        if ensure_tables:
            self.store.ensure_tables()

    # definitions -------------------------------------------------------------------------

    def _owned(self, model: MetricDefinition) -> MetricDefinition:
        """Fill owner/team/organization from the principal; refuse acting for others.

        The result is validated again as a whole (the principal's names included), so nothing
        unchecked is stored.
        """
        p = self.principal
        updates: dict[str, Any] = {}
        if model.owner is None:
            updates["owner"] = p.user_id
        elif model.owner != p.user_id and not p.is_system:
            raise MetricPermissionError(f"{p.user_id} cannot create definitions for {model.owner}")
        for name, mine in (("team", p.team), ("organization", p.organization)):
            theirs = getattr(model, name)
            if theirs is None:
                updates[name] = mine
            elif theirs != mine and not p.is_system:
                raise MetricPermissionError(f"{p.user_id} is not a member of {name} {theirs}")
        if updates:
            model = parse_definition({**model.model_dump(), **updates})
        return _check_audience(model)

    def create_definition(
        self, definition: MetricDefinition | Mapping[str, Any]
    ) -> StoredDefinition:
        """Validate, compile (every warehouse) and store version 1 of a new definition."""
        model = self._owned(validate_definition(parse_definition(definition)))
        return self.store.insert_version(
            new_definition_id(), 1, model, self.principal.user_id, self.clock()
        )

    def update_definition(
        self, definition_id: str, changes: MetricDefinition | Mapping[str, Any]
    ) -> StoredDefinition:
        """Store a new version with `changes` applied (a mapping, or a model whose explicitly
        set fields apply); the old versions stay as history."""
        current = self.get_definition(definition_id)
        if not can_edit(self.principal, current.definition):
            raise MetricPermissionError(f"{self.principal.user_id} may not edit {definition_id}")
        given = (
            changes.model_dump(exclude_unset=True)
            if isinstance(changes, MetricDefinition)
            else dict(changes)
        )
        merged = {**current.definition.model_dump(), **given}
        model = _check_audience(validate_definition(parse_definition(merged)))
        old = current.definition
        if (model.owner, model.organization) != (old.owner, old.organization):
            raise MetricPermissionError("owner and organization cannot be changed by an update")
        if model.team != old.team and model.team != self.principal.team:
            raise MetricPermissionError(f"{self.principal.user_id} is not in team {model.team}")
        return self.store.insert_version(
            definition_id, current.version + 1, model, self.principal.user_id, self.clock()
        )

    def deactivate_definition(self, definition_id: str) -> StoredDefinition:
        """A new version with is_active false: it is no longer calculated on schedule.

        The SQL is not compiled again, so a definition that stopped being accepted (stored
        before a rule was tightened) can still be switched off.
        """
        current = self.get_definition(definition_id)
        if not can_edit(self.principal, current.definition):
            raise MetricPermissionError(f"{self.principal.user_id} may not edit {definition_id}")
        model = parse_definition({**current.definition.model_dump(), "is_active": False})
        return self.store.insert_version(
            definition_id, current.version + 1, model, self.principal.user_id, self.clock()
        )

    def get_definition(self, definition_id: str, version: int | None = None) -> StoredDefinition:
        """The current (or a given) version, if the principal may see that version.

        Each version carries its own visibility: an earlier PRIVATE version stays private
        after a later one is shared.
        """
        if version is None:
            found = self.store.get(definition_id)
        elif isinstance(version, bool) or not isinstance(version, int):
            raise MetricValidationError("version", "must be a whole number")
        else:
            found = self.store.get(definition_id, version)
        if found is None or not can_view(self.principal, found.definition):
            which = "" if version is None else f" version {version}"
            raise MetricNotFoundError(f"no definition {definition_id!r}{which} visible to you")
        return found

    def list_definitions(self, *, include_inactive: bool = False) -> list[StoredDefinition]:
        """Current versions the principal may see."""
        found = self.store.list_current(include_inactive=include_inactive)
        return [s for s in found if can_view(self.principal, s.definition)]

    def history(self, definition_id: str) -> list[StoredDefinition]:
        """The versions of a definition the principal may see, oldest first."""
        visible = [
            s for s in self.store.history(definition_id) if can_view(self.principal, s.definition)
        ]
        if not visible:
            raise MetricNotFoundError(f"no definition {definition_id!r} visible to you")
        return visible

    def _visible_versions(self, definition_id: str) -> set[int]:
        return {s.version for s in self.history(definition_id)}

    def values(self, definition_id: str) -> list[StoredValue]:
        """Stored values computed by versions the principal may see."""
        visible = self._visible_versions(definition_id)
        return [v for v in self.store.values(definition_id) if v.definition_version in visible]

    def calculations(self, definition_id: str) -> list[CalculationRecord]:
        """The audit trail of the versions the principal may see."""
        visible = self._visible_versions(definition_id)
        return [
            c for c in self.store.calculations(definition_id) if c.definition_version in visible
        ]

    def usage(self, definition_id: str) -> Usage | None:
        """How often a visible definition was calculated, and when last."""
        self.get_definition(definition_id)
        return self.store.usage(definition_id)

    # running -----------------------------------------------------------------------------

    def compile(
        self,
        definition: MetricDefinition | Mapping[str, Any],
        start: PeriodBound = None,
        end: PeriodBound = None,
    ) -> CompiledMetric:
        """Compile for this warehouse's dialect and schema; read from the rollups only when
        they hold the period (custom_metrics.freshness), else from the events, saying why in
        `fallback_reason`."""

        def compiled(use_rollups: bool) -> CompiledMetric:
            return compile_metric(
                definition,
                self.warehouse.dialect,
                start,
                end,
                schema=self.warehouse.schema,
                week_start_index=self.warehouse.config.week_start_index,
                use_rollups=use_rollups,
            )

        fast = compiled(True)
        stale = self.freshness.staleness(fast.rollup_reads)
        if stale is None:
            return fast
        return replace(compiled(False), fallback_reason=f"{stale}: answered from the events")

    def estimate_cost(
        self,
        definition: MetricDefinition | Mapping[str, Any],
        start: PeriodBound = None,
        end: PeriodBound = None,
    ) -> CostEstimate:
        """Cost class from EXPLAIN only; the query itself is not run."""
        return self.runner.estimate(self.compile(definition, start, end))

    def test_metric_definition(
        self,
        definition: MetricDefinition | Mapping[str, Any],
        start: PeriodBound = None,
        end: PeriodBound = None,
    ) -> TestRun:
        """Validate and run a definition on a sample period (default: the last 7 days).

        Nothing is saved: no definition, no values, no audit row.
        """
        model = validate_definition(definition)
        if start is None and end is None:
            end = self.clock().date() + timedelta(days=1)
            start = end - timedelta(days=SAMPLE_DAYS)
        compiled = self.compile(model, start, end)
        (result,) = self.runner.run([compiled])
        return TestRun(
            model, compiled, result.columns, result.rows, result.cost, result.duration_ms
        )

    def calculate_metric(
        self, definition_id: str, start: date | datetime | str, end: date | datetime | str
    ) -> CalculationResult:
        """Compute the current version for [start, end) (one bucket per `time_grain`), store
        the values, audit the run, count the use. Raises MetricExecutionError on failure,
        after recording it as FAILED."""
        stored = self.get_definition(definition_id)
        lo, hi = whole_day_period(start, end)
        record = _Audit(self, stored, lo, hi, self.clock(), time.perf_counter())
        try:
            compiled = self.compile(stored.definition, lo, hi)
        except MetricValidationError as error:
            record.failed(f"no longer valid: {error}", None, None)
            raise
        record.answered_from = compiled.answered_from
        record.fallback_reason = compiled.fallback_reason
        try:
            (result,) = self.runner.run([compiled])
        except QueryFailure as failure:
            record.failed(str(failure), failure.cost, failure.timeout_ms)
            raise
        values = _values(result, compiled, lo, hi)
        buckets = compiled.series or ((lo, hi),)
        try:
            self.store.replace_values(
                stored.definition_id,
                stored.version,
                [
                    (
                        s,
                        e,
                        [(v.dimensions, v.value, v.extra) for v in values if v.period_start == s],
                    )
                    for s, e in buckets
                ],
                self.clock(),
            )
        except Exception as error:
            message = f"storing values failed: {type(error).__name__}: {error}"
            record.failed(message, result.cost, result.timeout_ms)
            raise MetricExecutionError(message) from error
        return record.succeeded(values, result)


def _check_audience(model: MetricDefinition) -> MetricDefinition:
    if model.visibility is Visibility.TEAM and model.team is None:
        raise MetricValidationError("team", "TEAM visibility needs a team")
    if model.visibility is Visibility.ORGANIZATION and model.organization is None:
        raise MetricValidationError("organization", "ORGANIZATION visibility needs an organization")
    return model


class _Audit:
    """Writes the audit row and the usage count for one calculation, whatever its outcome."""

    def __init__(
        self,
        service: CustomMetricService,
        stored: StoredDefinition,
        start: date,
        end: date,
        started_at: datetime,
        began: float,
    ) -> None:
        self.service = service
        self.stored = stored
        self.start = start
        self.end = end
        self.started_at = started_at
        self.began = began
        self.calculation_id = uuid.uuid4().hex
        self.answered_from: str | None = None
        self.fallback_reason: str | None = None

    def _write(
        self,
        status: str,
        rows: int,
        error: str | None,
        cost: CostEstimate | None,
        timeout_ms: int | None,
    ) -> int:
        duration = round((time.perf_counter() - self.began) * 1000)
        store = self.service.store
        store.record_calculation(
            CalculationRecord(
                calculation_id=self.calculation_id,
                definition_id=self.stored.definition_id,
                definition_version=self.stored.version,
                requested_by=self.service.principal.user_id,
                started_at=self.started_at,
                finished_at=self.service.clock(),
                period_start=self.start,
                period_end=self.end,
                duration_ms=duration,
                row_count=rows,
                status=status,
                error=error[:2000] if error else None,
                cost_class=cost.cost_class.value if cost else None,
                estimated_cost=cost.estimate if cost else None,
                timeout_ms=timeout_ms,
                answered_from=self.answered_from,
            )
        )
        store.touch_usage(
            self.stored.definition_id, self.service.principal.user_id, self.started_at
        )
        return duration

    def failed(self, error: str, cost: CostEstimate | None, timeout_ms: int | None) -> None:
        self._write(FAILED, 0, error, cost, timeout_ms)

    def succeeded(self, values: list[MetricValue], dearest: QueryResult) -> CalculationResult:
        duration = self._write(SUCCESS, len(values), None, dearest.cost, dearest.timeout_ms)
        return CalculationResult(
            self.stored.definition_id,
            self.stored.version,
            self.start,
            self.end,
            SUCCESS,
            values,
            duration,
            dearest.cost,
            None,
            self.calculation_id,
            self.answered_from,
            self.fallback_reason,
        )


def calculate_all_active(
    warehouse: Warehouse,
    start: date | datetime | str,
    end: date | datetime | str,
    *,
    policy: ExecutionPolicy | None = None,
) -> list[CalculationResult]:
    """Compute every active definition for [start, end) into custom_metric_values.

    For the scheduler (e.g. one call per daily partition). One definition failing does not stop
    the others; its result has status FAILED and the error, as in the audit trail.
    """
    service = CustomMetricService(warehouse, SYSTEM, policy=policy)
    lo, hi = whole_day_period(start, end)
    results: list[CalculationResult] = []
    for stored in service.list_definitions():
        try:
            results.append(service.calculate_metric(stored.definition_id, lo, hi))
        except (MetricExecutionError, MetricValidationError) as error:
            results.append(
                CalculationResult(
                    stored.definition_id, stored.version, lo, hi, FAILED, error=str(error)
                )
            )
    return results
