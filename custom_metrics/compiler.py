"""Compile a checked definition into one parameterized SELECT for PostgreSQL, DuckDB or Spark.

The query is assembled from sqlglot expression objects, never from pasted strings. Columns are
re-created from the data source's allowlist, JSON keys and every literal are bound parameters,
and the generated text is verified once more (its placeholders are exactly ours, no `;`, no
comment markers) before it is handed out.

On Spark (`:name` markers, bound by `spark.sql(query, args=...)`) dates and times are bound as
ISO text inside `CAST(:p AS DATE)` / `CAST(:p AS TIMESTAMP)`: pyspark hands Python dates and
datetimes to the JVM as java.sql values, which shifts instants before 1582 by days (Julian
calendar) and cannot express years before 1000. JSON keys are bound as the path `$.key`.

Meaning of `calculation_formula` per metric type (an "expression" is a row-level expression over
the source's columns, without aggregates):

- COUNT: `*`, an expression (rows where it is not NULL), or `count(...)` / `count_if(cond)`.
- SUM, AVERAGE, MAX, MIN: an expression, or the same wrapped in sum/avg/max/min.
- DISTINCT_COUNT: an expression, or `count(distinct expression)`.
- PERCENTILE: an expression plus the `percentile` field (a fraction in (0, 1)), or
  `percentile(expression, 0.95)`; continuous (interpolated) percentile on every warehouse.
- RATIO: `<aggregates> / <aggregates>`, e.g. `count_if(event_type = 'purchase') / count(*)`;
  every column sits inside an aggregate; compiled as numeric division with NULLIF(den, 0).

FUNNEL and RETENTION take no formula: they follow `counted_by` (actor_id or entity_id)
through the events (custom_metrics.funnel, custom_metrics.retention); with a `time_grain` the
aggregate types answer per period (custom_metrics.series).

Every `/` is true division (numeric on PostgreSQL, DOUBLE on DuckDB and Spark) and yields NULL
when the divisor is 0, so every warehouse gives the same answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlglot import exp

from custom_metrics.definitions import (
    CountedBy,
    MetricDefinition,
    MetricType,
    TimeGrain,
    parse_definition,
)
from custom_metrics.errors import MetricValidationError
from custom_metrics.funnel import FUNNEL_COLUMNS, FunnelParts, funnel_query
from custom_metrics.kinds import Kind, KindChecker, require_kind
from custom_metrics.percent import growth_pct
from custom_metrics.periods import next_boundary, whole_day_period
from custom_metrics.retention import (
    EPOCH,
    RETENTION_COLUMNS,
    RetentionParts,
    reported_cohorts,
    retention_query,
)
from custom_metrics.rollup_answers import (
    ALL,
    ROLLUP_DIMENSIONS,
    ROLLUP_TABLES,
    Piece,
    RollupAnswer,
    rollup_answer,
)
from custom_metrics.series import (
    COMPARE_COLUMNS,
    P_END,
    P_HI,
    P_LO,
    P_START,
    PERIOD_COLUMNS,
    plan_series,
)
from custom_metrics.sources import ColumnKind, DataSource, get_source
from custom_metrics.validation import (
    AGGREGATE_NODES,
    Aggregates,
    ExpressionChecker,
    parse_expression,
    plain_number,
    resolve_reference,
)
from warehouse import WarehouseConfig

DIALECTS: Final = ("postgres", "duckdb", "spark")
VALUE_COLUMN: Final = "value"
RESERVED_COLUMNS: Final = frozenset({VALUE_COLUMN, *PERIOD_COLUMNS, *COMPARE_COLUMNS})
_PARAM_RE: Final = {
    "postgres": re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s"),
    "duckdb": re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)"),
    "spark": re.compile(r":([A-Za-z_][A-Za-z0-9_]*)"),
}
_NUMERIC_TYPE: Final = {"postgres": "numeric", "duckdb": "double", "spark": "double"}
_SIMPLE_AGGREGATE: Final[dict[MetricType, type[exp.Expression]]] = {
    MetricType.SUM: exp.Sum,
    MetricType.AVERAGE: exp.Avg,
    MetricType.MAX: exp.Max,
    MetricType.MIN: exp.Min,
}
_FIELD: Final = "calculation_formula"

PeriodBound = date | datetime | str | None


@dataclass(frozen=True)
class CompiledMetric:
    """The SQL for one dialect, its bound parameters, and what its columns mean."""

    sql: str
    params: dict[str, Any]
    dialect: str
    columns: tuple[str, ...]
    definition: MetricDefinition = field(repr=False)
    period: tuple[date | datetime, date | datetime] | None = None
    series: tuple[tuple[date, date], ...] = ()
    trailing: tuple[str, ...] = ()
    answered_from: str = "events"
    rollup_reads: tuple[Piece, ...] = ()
    fallback_reason: str | None = None

    @property
    def dimension_columns(self) -> tuple[str, ...]:
        """The grouping columns: after the period columns of a series, before `trailing`
        (previous value and growth, conversions, cohort size and rate) and the value."""
        lead = len(PERIOD_COLUMNS) if self.series else 0
        return self.columns[lead : len(self.columns) - 1 - len(self.trailing)]


class _Binder:
    """Hands out parameter placeholders; the only source of names in the final SQL."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.params: dict[str, Any] = {}
        self._json_keys: dict[str, str] = {}
        self._count = 0

    def bind(self, value: Any, name: str | None = None) -> exp.Expression:
        if name is None:
            self._count += 1
            name = f"p{self._count}"
        if name in self.params:
            raise AssertionError(f"parameter {name} bound twice")
        self.params[name] = self._value(value)
        return self._marker(name, value)

    def constant(self, name: str, value: Any) -> exp.Expression:
        """A named value that may stand in several places (bound once)."""
        if name not in self.params:
            self.params[name] = self._value(value)
        elif self.params[name] != self._value(value):
            raise AssertionError(f"parameter {name} bound to two values")
        return self._marker(name, value)

    def json_key(self, key: str) -> exp.Placeholder:
        """One parameter per distinct key, so SELECT and GROUP BY expressions are identical."""
        if key not in self._json_keys:
            self._json_keys[key] = f"k{len(self._json_keys) + 1}"
            # Spark's get_json_object takes a path; keys are plain identifiers (validation).
            self.params[self._json_keys[key]] = f"$.{key}" if self.dialect == "spark" else key
        return exp.Placeholder(this=self._json_keys[key])

    def _value(self, value: Any) -> Any:
        """What the driver receives: on Spark, dates and times as ISO text (cast in the SQL)."""
        if self.dialect == "spark" and isinstance(value, date):
            if isinstance(value, datetime):
                aware = value if value.tzinfo else value.replace(tzinfo=UTC)
                return aware.astimezone(UTC).isoformat()
            return value.isoformat()
        return value

    def _marker(self, name: str, value: Any) -> exp.Expression:
        marker = exp.Placeholder(this=name)
        if self.dialect == "spark" and isinstance(value, date):
            kind = "timestamp" if isinstance(value, datetime) else "date"
            return exp.cast(marker, exp.DataType.build(kind))
        return marker


class _Rewriter:
    """Rebuilds a checked user expression: canonical columns, bound literals, safe division."""

    def __init__(self, source: DataSource, dialect: str, binder: _Binder) -> None:
        self.source = source
        self.dialect = dialect
        self.binder = binder

    def reference(self, column: str, key: str | None) -> exp.Expression:
        """A column from the allowlist, or `(properties ->> key)` with the key bound."""
        if key is None:
            return exp.column(column)
        extract = exp.JSONExtractScalar(
            this=exp.column(column), expression=self.binder.json_key(key)
        )
        return exp.Paren(this=extract)

    def safe_div(self, numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
        cast = exp.cast(numerator, exp.DataType.build(_NUMERIC_TYPE[self.dialect]))
        return exp.Div(
            this=cast,
            expression=exp.Nullif(this=denominator, expression=exp.Literal.number(0)),
        )

    def average(self, argument: exp.Expression) -> exp.Expression:
        """avg(); a DOUBLE on Spark as on DuckDB (Spark would round a decimal's mean to the
        column's scale + 4 digits)."""
        if self.dialect == "spark":
            argument = exp.cast(argument, exp.DataType.build("double"))
        return exp.Avg(this=argument)

    def rewrite(
        self, node: exp.Expression, field_name: str, hint: ColumnKind | None = None
    ) -> exp.Expression:
        if isinstance(node, exp.Column):
            name = f"{node.table}.{node.name}" if node.table else node.name
            return self.reference(*resolve_reference(name, self.source, field_name))
        if isinstance(node, exp.Literal):
            return self.binder.bind(_literal_value(node, hint, field_name))
        if isinstance(node, exp.Div):
            return self.safe_div(
                self.rewrite(node.this, field_name), self.rewrite(node.expression, field_name)
            )
        if isinstance(node, exp.CountIf):
            condition = self.rewrite(node.this, field_name)
            case = exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))])
            return exp.Count(this=case)
        if isinstance(node, exp.Avg):
            return self.average(self.rewrite(node.this, field_name))
        child_hint = self._hint(node) or (hint if isinstance(node, exp.Neg | exp.Paren) else None)
        args: dict[str, Any] = {}
        for key, value in node.args.items():
            if isinstance(value, exp.Expression):
                args[key] = self.rewrite(value, field_name, child_hint)
            elif isinstance(value, list):
                args[key] = [
                    self.rewrite(v, field_name, child_hint) if isinstance(v, exp.Expression) else v
                    for v in value
                ]
            else:
                args[key] = value
        return type(node)(**args)

    def _hint(self, node: exp.Expression) -> ColumnKind | None:
        """In `date_col >= '2025-01-01'` the string is bound as a date (and checked); so in
        `'2025-01-01' between event_date and ...` or `coalesce(occurred_at, ...) < '...'`."""
        comparisons = exp.EQ | exp.NEQ | exp.GT | exp.GTE | exp.LT | exp.LTE | exp.Between | exp.In
        if not isinstance(node, comparisons):
            return None
        kinds = KindChecker(self.source, "hint")
        for key in ("this", "expression", "low", "high"):
            operand = node.args.get(key)
            if isinstance(operand, exp.Expression):
                kind = kinds.kind(operand)
                if kind in (Kind.DATE, Kind.TIMESTAMP):
                    return ColumnKind.DATE if kind is Kind.DATE else ColumnKind.TIMESTAMP
        return None


def _literal_value(node: exp.Literal, hint: ColumnKind | None, field_name: str) -> Any:
    text = str(node.this)
    if node.is_string:
        if hint is ColumnKind.DATE:
            return _parse_date(text, field_name)
        if hint is ColumnKind.TIMESTAMP:
            return _parse_timestamp(text, field_name)
        return text
    try:
        value = plain_number(text)
    except ValueError as error:
        raise MetricValidationError(field_name, str(error)) from None
    return int(value) if text.isdigit() else value


def _parse_date(text: str, field_name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise MetricValidationError(field_name, f"{text!r} is not a date (YYYY-MM-DD)") from None


def _parse_timestamp(text: str, field_name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise MetricValidationError(
            field_name, f"{text!r} is not an ISO timestamp or date"
        ) from None
    return as_utc(value, field_name)


def as_utc(value: datetime, field_name: str) -> datetime:
    """`value` in UTC (naive means UTC); refused when its zone moves it past year 1 or 9999."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise MetricValidationError(
            field_name, f"{value.isoformat()} is outside years 1..9999 in UTC; pick another time"
        ) from None


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _check_numeric(node: exp.Expression, source: DataSource, metric_type: MetricType) -> None:
    """SUM, AVERAGE, MAX, MIN and PERCENTILE work on numbers (the stored value is a number)."""
    require_kind(
        node, source, _FIELD, Kind.NUMBER, f"{metric_type.value} needs a numeric expression"
    )


def _check_reads_data(tree: exp.Expression) -> None:
    """A formula must read the data: a column, or `*` in count(*); `42` is not a metric."""
    if not any(isinstance(n, exp.Column | exp.Star) for n in tree.walk()):
        raise MetricValidationError(
            _FIELD,
            "refers to no column: a metric aggregates the data (count rows with count(*))",
        )


def _fraction(value: object, field_name: str) -> float:
    try:
        fraction = float(str(value))
    except ValueError:
        raise MetricValidationError(field_name, f"percentile {value!r} is not a number") from None
    if not 0 < fraction < 1:
        raise MetricValidationError(
            field_name, f"percentile must be a fraction strictly between 0 and 1, not {value}"
        )
    return fraction


class _ValueBuilder:
    """Turns `calculation_formula` into the aggregate expression for the metric type."""

    def __init__(self, definition: MetricDefinition, source: DataSource, rw: _Rewriter) -> None:
        self.definition = definition
        self.source = source
        self.rw = rw
        self.text = definition.calculation_formula or ""
        self.checker = ExpressionChecker(source, _FIELD, self.text)

    def build(self) -> exp.Expression:
        metric_type = self.definition.metric_type
        if metric_type is MetricType.COUNT and self.text.strip() == "*":
            return exp.Count(this=exp.Star())
        tree = parse_expression(self.text, _FIELD)
        value = self._value(tree)
        _check_reads_data(tree)
        return value

    def _value(self, tree: exp.Expression) -> exp.Expression:
        metric_type = self.definition.metric_type
        core = _unparen(tree)
        if metric_type is MetricType.PERCENTILE:
            return self._percentile(core)
        if metric_type is MetricType.RATIO:
            return self._ratio(core)
        if isinstance(core, AGGREGATE_NODES):
            return self._wrapped(core)
        self.checker.check(tree, Aggregates.FORBIDDEN)
        argument = self.rw.rewrite(tree, _FIELD)
        if metric_type is MetricType.COUNT:
            return exp.Count(this=argument)
        if metric_type is MetricType.DISTINCT_COUNT:
            return exp.Count(this=exp.Distinct(expressions=[argument]))
        _check_numeric(tree, self.source, metric_type)
        if metric_type is MetricType.AVERAGE:
            return self.rw.average(argument)
        return _SIMPLE_AGGREGATE[metric_type](this=argument)

    def _wrapped(self, core: exp.Expression) -> exp.Expression:
        """`sum(x)` under SUM, `count(distinct x)` under DISTINCT_COUNT, and so on."""
        metric_type = self.definition.metric_type
        distinct = isinstance(core, exp.Count) and isinstance(core.this, exp.Distinct)
        matches = {
            MetricType.COUNT: isinstance(core, exp.CountIf | exp.Count) and not distinct,
            MetricType.DISTINCT_COUNT: distinct,
        }.get(metric_type, type(core) is _SIMPLE_AGGREGATE.get(metric_type))
        if not matches:
            hint = " (use DISTINCT_COUNT)" if distinct else ""
            raise MetricValidationError(
                _FIELD,
                f"{core.key}() does not match metric_type {metric_type.value}{hint}; "
                "write the expression alone or wrap it in the matching aggregate",
            )
        self.checker.check(core, Aggregates.REQUIRED_AROUND_COLUMNS)
        if metric_type in _SIMPLE_AGGREGATE:
            _check_numeric(core.this, self.source, metric_type)
        return self.rw.rewrite(core, _FIELD)

    def _ratio(self, core: exp.Expression) -> exp.Expression:
        if not isinstance(core, exp.Div):
            raise MetricValidationError(
                _FIELD,
                "a RATIO formula must divide two aggregates, e.g. "
                "count_if(event_type = 'purchase') / count(*)",
            )
        self.checker.check(core.this, Aggregates.REQUIRED_AROUND_COLUMNS)
        self.checker.check(core.expression, Aggregates.REQUIRED_AROUND_COLUMNS)
        for side in (core.this, core.expression):
            require_kind(side, self.source, _FIELD, Kind.NUMBER, "each side of a RATIO is a number")
        return self.rw.safe_div(
            self.rw.rewrite(core.this, _FIELD), self.rw.rewrite(core.expression, _FIELD)
        )

    def _percentile(self, core: exp.Expression) -> exp.Expression:
        given = self.definition.percentile
        argument: exp.Expression = core
        inline: exp.Expression | None = None
        if isinstance(core, exp.Anonymous) and core.name.lower() == "percentile":
            if len(core.expressions) != 2:
                raise MetricValidationError(_FIELD, "write percentile(expression, fraction)")
            argument, inline = core.expressions
        elif isinstance(core, exp.PercentileCont):
            argument, inline = core.this, core.args.get("expression")
            if inline is None:
                raise MetricValidationError(_FIELD, "write percentile(expression, fraction)")
        fraction: float
        if inline is not None:
            if not isinstance(inline, exp.Literal) or inline.is_string:
                raise MetricValidationError(_FIELD, "the percentile must be a number literal")
            fraction = _fraction(inline.this, _FIELD)
            if given is not None and abs(given - fraction) > 1e-12:
                raise MetricValidationError(
                    "percentile", f"{given} disagrees with {fraction} in the formula"
                )
        elif given is None:
            raise MetricValidationError(
                "percentile",
                "PERCENTILE needs a fraction in (0, 1): set percentile or write "
                "percentile(expression, 0.95)",
            )
        else:
            fraction = _fraction(given, "percentile")
        self.checker.check(argument, Aggregates.FORBIDDEN)
        _check_numeric(argument, self.source, MetricType.PERCENTILE)
        # Interpolated percentiles are real numbers: DuckDB would otherwise keep a DECIMAL
        # column's scale and round them, PostgreSQL casts to double precision anyway.
        value = exp.cast(self.rw.rewrite(argument, _FIELD), exp.DataType.build("double"))
        bound = self.rw.binder.bind(fraction)
        if self.rw.dialect == "spark":  # exact and interpolated, as percentile_cont
            return exp.Quantile(this=value, quantile=bound)
        if self.rw.dialect == "postgres":
            ordered = exp.Order(expressions=[exp.Ordered(this=value, nulls_first=False)])
            return exp.WithinGroup(this=exp.PercentileCont(this=bound), expression=ordered)
        return exp.PercentileCont(this=value, expression=bound)


def _check_filter_value(value: Any, field_name: str) -> None:
    """Control and invisible characters (NUL, RTL overrides, zero-width) are refused."""
    if isinstance(value, str) and any(
        unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value
    ):
        raise MetricValidationError(
            field_name, "control or invisible characters are not allowed in values"
        )


def _filter_value(value: Any, kind: ColumnKind, is_json: bool, field_name: str) -> Any:
    """Python value to bind for one filter value: JSON keys compare as text, dates as dates."""
    _check_filter_value(value, field_name)
    if is_json:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value.isoformat() if isinstance(value, date) else str(value)
    if kind is ColumnKind.NUMBER and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise MetricValidationError(field_name, f"needs a number, not {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise MetricValidationError(field_name, "whole numbers must fit in 64 bits")
    if kind is ColumnKind.TEXT:
        if isinstance(value, bool):
            raise MetricValidationError(field_name, f"needs text, not {value!r}")
        return value if isinstance(value, str) else str(value)
    if kind is ColumnKind.DATE and isinstance(value, str):
        return _parse_date(value, field_name)
    if kind is ColumnKind.TIMESTAMP and isinstance(value, str):
        return _parse_timestamp(value, field_name)
    if kind is ColumnKind.TIMESTAMP and isinstance(value, datetime):
        return as_utc(value, field_name)
    if kind is ColumnKind.TIMESTAMP and isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def _filters(
    filters: Mapping[str, Any], source: DataSource, rw: _Rewriter, prefix: str = "filters"
) -> list[exp.Expression]:
    """One condition per column of an event filter (`filters`, a step, a cohort event)."""
    conditions: list[exp.Expression] = []
    for name, value in filters.items():
        field_name = f"{prefix}.{name}"
        if not name.isascii() or not name.isprintable():
            field_name = f"{prefix}[{name!a}]"
        column, key = resolve_reference(name, source, field_name)
        kind = ColumnKind.TEXT if key else source.columns[column]
        target = rw.reference(column, key)
        if value is None:
            conditions.append(exp.Is(this=target, expression=exp.Null()))
        elif isinstance(value, list):
            if any(v is None for v in value):
                raise MetricValidationError(field_name, "NULL cannot be in a list; filter it alone")
            items = [
                rw.binder.bind(_filter_value(v, kind, key is not None, field_name)) for v in value
            ]
            conditions.append(exp.In(this=target, expressions=items))
        else:
            bound = rw.binder.bind(_filter_value(value, kind, key is not None, field_name))
            conditions.append(exp.EQ(this=target, expression=bound))
    return conditions


def _as_bound(value: object, kind: ColumnKind, label: str) -> date | datetime | None:
    """A period bound as the time column's type: UTC datetime, or a whole day."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _parse_timestamp(value, label)
    if not isinstance(value, date):
        raise MetricValidationError(
            label,
            f"must be a date, a datetime or an ISO text such as '2025-01-01', "
            f"not {type(value).__name__}",
        )
    if kind is ColumnKind.TIMESTAMP:
        if isinstance(value, datetime):
            return as_utc(value, label)
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, datetime):
        utc = as_utc(value, label)
        if utc.time() != datetime.min.time():
            raise MetricValidationError(label, "must be a whole day (midnight UTC) for this source")
        return utc.date()
    return value


def resolve_period(
    definition: MetricDefinition, source: DataSource, start: PeriodBound, end: PeriodBound
) -> tuple[date | datetime | None, date | datetime | None]:
    """The half-open window [start, end) on the time column; `lookback_days` fixes the start."""
    kind = source.time_kind
    lo, hi = _as_bound(start, kind, "start"), _as_bound(end, kind, "end")
    if definition.lookback_days is not None and hi is not None:
        try:
            lo = hi - timedelta(days=definition.lookback_days)
        except OverflowError:
            raise MetricValidationError(
                "lookback_days",
                f"{definition.lookback_days} days before {hi} is before year 1; "
                "pick a later end or a shorter look-back",
            ) from None
    if lo is not None and hi is not None and lo >= hi:
        raise MetricValidationError("start", "the period's start must be before its end")
    return lo, hi


def _verify(sql: str, params: Mapping[str, Any], dialect: str) -> None:
    """Last line of defence: placeholders are exactly ours, no statement or comment markers."""
    names = set(_PARAM_RE[dialect].findall(sql))
    stripped = _PARAM_RE[dialect].sub("", sql)
    problems = []
    if names != set(params):
        problems.append("placeholders do not match the parameters")
    if any(marker in sql for marker in (";", "--", "/*", "*/")):
        problems.append("statement or comment markers")
    if any(char in stripped for char in "%$?'\\"):
        problems.append("unexpected literal or placeholder characters")
    if problems:
        raise MetricValidationError("definition", "internal check failed: " + ", ".join(problems))


_FUNNEL_FIELDS: Final = ("steps", "conversion_window_days")
_RETENTION_FIELDS: Final = ("cohort_event", "return_event", "period", "periods")
_AGGREGATE_ONLY: Final = (
    "calculation_formula",
    "dimensions",
    "time_grain",
    "lookback_days",
    "compare_to",
)


def _is_set(model: MetricDefinition, name: str) -> bool:
    return getattr(model, name) not in (None, ())


def _check_options(model: MetricDefinition) -> None:
    """Fields that only make sense together, or only for some metric types."""
    kind = model.metric_type
    required = {
        MetricType.FUNNEL: _FUNNEL_FIELDS,
        MetricType.RETENTION: _RETENTION_FIELDS,
    }.get(kind, ("calculation_formula",))
    for name in required:
        if not _is_set(model, name):
            raise MetricValidationError(name, f"is required for metric_type {kind.value}")
    others = {
        MetricType.FUNNEL: (*_RETENTION_FIELDS, *_AGGREGATE_ONLY),
        MetricType.RETENTION: (*_FUNNEL_FIELDS, *_AGGREGATE_ONLY),
    }.get(kind, (*_FUNNEL_FIELDS, *_RETENTION_FIELDS, "counted_by"))
    for name in others:
        if _is_set(model, name):
            raise MetricValidationError(name, f"is not used by metric_type {kind.value}")
    if kind in (MetricType.FUNNEL, MetricType.RETENTION) and model.data_source != "events":
        raise MetricValidationError(
            "data_source", f"{kind.value} follows actors through the events: use events"
        )
    if model.compare_to is not None and model.time_grain is None:
        raise MetricValidationError(
            "compare_to", "needs a time_grain (day, week or month) whose periods are compared"
        )


@dataclass
class _Parts:
    """The pieces every query shape shares: grouping, the aggregate, the row conditions."""

    dimensions: list[exp.Expression]
    aliases: list[str]
    value: exp.Expression
    conditions: list[exp.Expression]
    table: exp.Expression
    time_column: exp.Column

    def select(self, lo: exp.Expression | None, hi: exp.Expression | None) -> exp.Select:
        """The aggregate over [lo, hi) on the time column: dimension columns, then value."""
        conditions = [c.copy() for c in self.conditions]
        if lo is not None:
            conditions.append(exp.GTE(this=self.time_column.copy(), expression=lo))
        if hi is not None:
            conditions.append(exp.LT(this=self.time_column.copy(), expression=hi))
        projections = [
            exp.alias_(d.copy(), exp.to_identifier(a, quoted=True))
            for d, a in zip(self.dimensions, self.aliases, strict=True)
        ]
        projections.append(
            exp.alias_(self.value.copy(), exp.to_identifier(VALUE_COLUMN, quoted=True))
        )
        query = exp.select(*projections).from_(self.table.copy())
        if conditions:
            query = query.where(exp.and_(*conditions))
        if self.dimensions:
            query = query.group_by(*(d.copy() for d in self.dimensions))
        return query


def _parts(model: MetricDefinition, source: DataSource, rw: _Rewriter, schema: str) -> _Parts:
    dimensions: list[exp.Expression] = []
    aliases: list[str] = []
    for index, name in enumerate(model.dimensions):
        column, key = resolve_reference(name, source, f"dimensions[{index}]")
        alias = key or column
        if alias in aliases:
            raise MetricValidationError(f"dimensions[{index}]", f"output column {alias!r} twice")
        if alias in RESERVED_COLUMNS or alias.startswith("cm_"):
            raise MetricValidationError(
                f"dimensions[{index}]", f"output column {alias!r} is reserved for the answer"
            )
        aliases.append(alias)
        dimensions.append(rw.reference(column, key))

    value = _ValueBuilder(model, source, rw).build()
    conditions = _row_conditions(model, source, rw)
    return _Parts(
        dimensions,
        aliases,
        value,
        conditions,
        _table(source, schema),
        exp.column(source.time_column),
    )


def _table(source: DataSource, schema: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(source.table), db=exp.to_identifier(schema))


def _row_conditions(
    model: MetricDefinition, source: DataSource, rw: _Rewriter
) -> list[exp.Expression]:
    """`filters` and `where`: which rows the metric reads."""
    conditions = _filters(model.filters, source, rw)
    if model.where is not None:
        tree = parse_expression(model.where, "where")
        ExpressionChecker(source, "where", model.where).check(tree, Aggregates.FORBIDDEN)
        require_kind(tree, source, "where", Kind.BOOLEAN, "where must be a condition")
        conditions.append(exp.Paren(this=rw.rewrite(tree, "where")))
    return conditions


def _render(query: exp.Expression, binder: _Binder, dialect: str) -> str:
    try:
        sql = query.sql(dialect=dialect)
    except RecursionError:
        raise MetricValidationError("definition", "expression is too deeply nested") from None
    _verify(sql, binder.params, dialect)
    return sql


def _compile_series(
    model: MetricDefinition,
    source: DataSource,
    parts: _Parts,
    binder: _Binder,
    dialect: str,
    period: tuple[date, date],
    week_start_index: int,
) -> tuple[str, tuple[str, ...], tuple[tuple[date, date], ...]]:
    """One query answering every period of the grain: a VALUES list of the periods and their
    windows, each aggregated by a LATERAL subquery (so an empty period still has its row when
    there are no dimensions, as a one-period query would)."""
    plan = plan_series(model, period[0], period[1], week_start_index)
    kind = source.time_kind
    rows = [
        exp.Tuple(
            expressions=[
                binder.bind(p.start),
                binder.bind(p.end),
                binder.bind(_as_bound(p.window_start, kind, "start")),
                binder.bind(_as_bound(p.end, kind, "end")),
            ]
        )
        for p in plan
    ]
    periods = exp.Values(
        expressions=rows,
        alias=exp.TableAlias(
            this=exp.to_identifier("cm_p"),
            columns=[exp.to_identifier(c) for c in (P_START, P_END, P_LO, P_HI)],
        ),
    )
    inner = parts.select(exp.column(P_LO, table="cm_p"), exp.column(P_HI, table="cm_p"))
    lateral = exp.Lateral(
        this=inner.subquery(), alias=exp.TableAlias(this=exp.to_identifier("cm_v"))
    )
    outputs = [*parts.aliases, VALUE_COLUMN]

    def quoted(name: str, table: str) -> exp.Column:
        return exp.column(exp.to_identifier(name, quoted=True), table=table)

    series = (
        exp.select(
            exp.column(P_START, table="cm_p"),
            exp.column(P_END, table="cm_p"),
            *(quoted(a, "cm_v") for a in outputs),
        )
        .from_(periods)
        .join(lateral, join_type="cross")
    )
    reported = tuple((p.start, p.end) for p in plan if p.reported)
    period_outputs = [
        exp.alias_(
            exp.column(P_START, table="cm_c"), exp.to_identifier(PERIOD_COLUMNS[0], quoted=True)
        ),
        exp.alias_(
            exp.column(P_END, table="cm_c"), exp.to_identifier(PERIOD_COLUMNS[1], quoted=True)
        ),
    ]
    dims = [exp.alias_(quoted(a, "cm_c"), exp.to_identifier(a, quoted=True)) for a in parts.aliases]
    value = exp.alias_(quoted(VALUE_COLUMN, "cm_c"), exp.to_identifier(VALUE_COLUMN, quoted=True))
    order = [exp.column(P_START, table="cm_c"), *(quoted(a, "cm_c") for a in parts.aliases)]
    current = exp.Table(
        this=exp.to_identifier("cm_series"), alias=exp.TableAlias(this=exp.to_identifier("cm_c"))
    )
    if model.compare_to is None:
        query = exp.select(*period_outputs, *dims, value).from_(current).order_by(*order)
        columns: tuple[str, ...] = (*PERIOD_COLUMNS, *parts.aliases, VALUE_COLUMN)
    else:
        previous = exp.Table(
            this=exp.to_identifier("cm_series"),
            alias=exp.TableAlias(this=exp.to_identifier("cm_b")),
        )
        matches: list[exp.Expression] = [
            exp.EQ(
                this=exp.column(P_END, table="cm_b"), expression=exp.column(P_START, table="cm_c")
            )
        ]
        matches += [
            exp.NullSafeEQ(this=quoted(a, "cm_b"), expression=quoted(a, "cm_c"))
            for a in parts.aliases
        ]
        before = quoted(VALUE_COLUMN, "cm_b")
        compared = [
            exp.alias_(before.copy(), exp.to_identifier(COMPARE_COLUMNS[0], quoted=True)),
            exp.alias_(
                growth_pct(quoted(VALUE_COLUMN, "cm_c"), before, dialect),
                exp.to_identifier(COMPARE_COLUMNS[1], quoted=True),
            ),
        ]
        query = (
            exp.select(*period_outputs, *dims, *compared, value)
            .from_(current)
            .join(previous, on=exp.and_(*matches), join_type="left")
            .where(
                exp.GTE(
                    this=exp.column(P_START, table="cm_c"),
                    expression=binder.bind(reported[0][0], "period_start"),
                )
            )
            .order_by(*order)
        )
        columns = (*PERIOD_COLUMNS, *parts.aliases, *COMPARE_COLUMNS, VALUE_COLUMN)
    query = query.with_("cm_series", as_=series)
    return _render(query, binder, dialect), columns, reported


def _journey_setup(
    model: MetricDefinition,
    source: DataSource,
    rw: _Rewriter,
    events: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
) -> tuple[exp.Expression, list[exp.Expression], list[exp.Expression]]:
    """Who is followed, the row conditions, and one condition per event filter."""
    who = exp.column((model.counted_by or CountedBy.ACTOR_ID).value)
    matches: list[exp.Expression] = [
        exp.Paren(this=exp.and_(*_filters(e, source, rw, label)))
        for e, label in zip(events, labels, strict=True)
    ]
    return who, _row_conditions(model, source, rw), matches


def _compile_funnel(
    model: MetricDefinition,
    source: DataSource,
    rw: _Rewriter,
    dialect: str,
    schema: str,
    start: PeriodBound,
    end: PeriodBound,
) -> CompiledMetric:
    steps = model.steps or ()
    labels = [f"steps[{index}]" for index in range(len(steps))]
    who, conditions, matches = _journey_setup(model, source, rw, steps, labels)
    lo, hi = resolve_period(model, source, start, end)
    window = timedelta(days=model.conversion_window_days or 0)
    horizon: date | datetime | None = None
    if hi is not None:
        try:
            horizon = hi + window
        except OverflowError:
            raise MetricValidationError(
                "end", "the conversion window would run past 9999-12-31; pick an earlier end"
            ) from None
    binder = rw.binder
    parts = FunnelParts(
        table=_table(source, schema),
        who=who,
        at=exp.column(source.time_column),
        steps=matches,
        conditions=conditions,
        start=None if lo is None else binder.bind(lo, "period_start"),
        end=None if hi is None else binder.bind(hi, "period_end"),
        horizon=None if horizon is None else binder.bind(horizon, "horizon"),
        window=binder.bind(window, "window"),
    )
    sql = _render(funnel_query(parts, dialect), binder, dialect)
    period = (lo, hi) if lo is not None and hi is not None else None
    return CompiledMetric(
        sql, dict(binder.params), dialect, FUNNEL_COLUMNS, model, period, (), FUNNEL_COLUMNS[1:3]
    )


def _period_index_sql(
    day: exp.Expression, grain: TimeGrain, week_start: int, binder: _Binder
) -> exp.Expression:
    """The SQL of retention.period_index: day numbers from year 1, weeks, months."""
    if grain is TimeGrain.MONTH:
        months = exp.Add(
            this=exp.Mul(
                this=exp.cast(exp.Year(this=day), exp.DataType.build("bigint")),
                expression=exp.Literal.number(12),
            ),
            expression=exp.cast(exp.Month(this=day.copy()), exp.DataType.build("bigint")),
        )
        return exp.Sub(this=months, expression=exp.Literal.number(1))
    epoch = binder.constant("epoch", EPOCH)
    days: exp.Expression
    if binder.dialect == "spark":  # date - date is an interval on Spark
        days = exp.DateDiff(this=day, expression=epoch, unit=exp.var("DAY"))
    else:
        days = exp.Sub(this=day, expression=epoch)
    if grain is TimeGrain.DAY:
        return exp.cast(exp.Paren(this=days), exp.DataType.build("bigint"))
    shifted = exp.Add(
        this=days,
        expression=exp.Paren(
            this=exp.Sub(
                this=exp.Literal.number(7), expression=binder.constant("week_start", week_start)
            )
        ),
    )
    weeks = exp.IntDiv(this=exp.Paren(this=shifted), expression=exp.Literal.number(7))
    return exp.cast(weeks, exp.DataType.build("bigint"))


def _compile_retention(
    model: MetricDefinition,
    source: DataSource,
    rw: _Rewriter,
    dialect: str,
    schema: str,
    start: PeriodBound,
    end: PeriodBound,
    week_start: int,
) -> CompiledMetric:
    events = (model.cohort_event or {}, model.return_event or {})
    who, conditions, (cohort_match, return_match) = _journey_setup(
        model, source, rw, events, ("cohort_event", "return_event")
    )
    if start is None or end is None:
        raise MetricValidationError(
            "start", "RETENTION needs a period [start, end): its cohorts are reported"
        )
    lo, hi = whole_day_period(start, end)
    grain = model.period or TimeGrain.WEEK
    periods = model.periods or 1
    cohorts = reported_cohorts(lo, hi, grain, week_start)
    if not cohorts:
        raise MetricValidationError(
            "start", f"no whole {grain.value} starts in [{lo}, {hi}); widen the period"
        )
    horizon: date | None = cohorts[-1].start
    for _ in range(periods + 1):
        horizon = None if horizon is None else next_boundary(horizon, grain, week_start)
    binder = rw.binder
    day = exp.column("event_date")
    parts = RetentionParts(
        table=_table(source, schema),
        who=who,
        day=day,
        cohort_event=cohort_match,
        return_event=return_match,
        conditions=conditions,
        before=binder.bind(hi, "period_end"),
        horizon=None if horizon is None else binder.bind(horizon, "horizon"),
        first_cohort=binder.bind(cohorts[0].index, "first_cohort"),
        cohorts=[(binder.bind(c.index), binder.bind(c.start), binder.bind(c.end)) for c in cohorts],
        offsets=[binder.bind(k) for k in range(periods + 1)],
        index_of=lambda node: _period_index_sql(node, grain, week_start, binder),
    )
    sql = _render(retention_query(parts, dialect), binder, dialect)
    series = tuple((c.start, c.end) for c in cohorts)
    return CompiledMetric(
        sql,
        dict(binder.params),
        dialect,
        RETENTION_COLUMNS,
        model,
        (lo, hi),
        series,
        RETENTION_COLUMNS[3:5],
    )


def compile_metric(
    definition: MetricDefinition | Mapping[str, Any],
    dialect: str = "postgres",
    start: PeriodBound = None,
    end: PeriodBound = None,
    *,
    schema: str | None = None,
    week_start_index: int | None = None,
    use_rollups: bool = True,
) -> CompiledMetric:
    """Validate a definition and compile it to one SELECT for `dialect` (docs/reference.md).

    The result has `.sql` in the driver's named-parameter style and `.params`; its rows are the
    dimension columns then `value`. With a `time_grain` and both bounds (whole days) the rows
    are per period: `period_start`, `period_end`, the dimensions, with `compare_to` also
    `previous_value` and `growth_pct`, then `value`. Weeks start on `week_start_index`
    (0 = Monday; default the configured week start). When a rollup holds exactly the answer
    (custom_metrics.rollup_answers) it is read from there unless `use_rollups` is false;
    `.answered_from` names the source read. Anything not accepted raises
    MetricValidationError.
    """
    if dialect not in DIALECTS:
        raise MetricValidationError("dialect", f"must be one of {', '.join(DIALECTS)}")
    model = parse_definition(definition)
    _check_options(model)
    source = get_source(model.data_source)
    binder = _Binder(dialect)
    rw = _Rewriter(source, dialect, binder)
    config = WarehouseConfig() if schema is None or week_start_index is None else None
    schema_name = schema or (config.schema if config else "")
    week_start = week_start_index
    if week_start is None:
        week_start = config.week_start_index if config else 0
    if model.metric_type is MetricType.FUNNEL:
        return _compile_funnel(model, source, rw, dialect, schema_name, start, end)
    if model.metric_type is MetricType.RETENTION:
        return _compile_retention(model, source, rw, dialect, schema_name, start, end, week_start)
    parts = _parts(model, source, rw, schema_name)  # validates, whatever answers it
    answer = None
    reads: tuple[Piece, ...] = ()
    if use_rollups:
        windows = _windows(model, start, end, week_start)
        answer = rollup_answer(model, windows, week_start)
        if answer is not None and answer.pieces:
            reads = answer.pieces
        elif answer is not None and windows:
            grain = {t: g for g, t in ROLLUP_TABLES.items()}[answer.source]
            reads = (Piece(grain, min(w[0] for w in windows), max(w[1] for w in windows)),)
    answered_from = source.name if answer is None else answer.source
    if answer is not None:
        binder = _Binder(dialect)
        if answer.pieces:  # one window, no series
            rw = _Rewriter(get_source(answer.pieces[0].table), dialect, binder)
            parts = _pieces_parts(model, answer, rw, schema_name)
        else:
            source = get_source(answer.source)
            rw = _Rewriter(source, dialect, binder)
            parts = _rollup_parts(model, answer, source, rw, schema_name)

    if model.time_grain is not None and start is not None and end is not None:
        days = whole_day_period(start, end)
        sql, columns, reported = _compile_series(
            model, source, parts, binder, dialect, days, week_start
        )
        trailing = COMPARE_COLUMNS if model.compare_to else ()
        return CompiledMetric(
            sql,
            dict(binder.params),
            dialect,
            columns,
            model,
            days,
            reported,
            trailing,
            answered_from=answered_from,
            rollup_reads=reads,
        )

    lo: date | datetime | None
    hi: date | datetime | None
    if answer is not None and answer.pieces:  # every piece bounds its own periods
        lo, hi = answer.pieces[0].start, answer.pieces[-1].end
        query = parts.select(None, None)
    else:
        lo, hi = resolve_period(model, source, start, end)
        query = parts.select(
            None if lo is None else binder.bind(lo, "period_start"),
            None if hi is None else binder.bind(hi, "period_end"),
        )
    sql = _render(query, binder, dialect)
    period = (lo, hi) if lo is not None and hi is not None else None
    return CompiledMetric(
        sql,
        dict(binder.params),
        dialect,
        (*parts.aliases, VALUE_COLUMN),
        model,
        period,
        answered_from=answered_from,
        rollup_reads=reads,
    )


def _windows(
    model: MetricDefinition, start: PeriodBound, end: PeriodBound, week_start: int
) -> list[tuple[date, date]] | None:
    """The whole-day windows the answer reads, or None (no period, or not whole days)."""
    if start is None or end is None:
        return None
    try:
        lo, hi = whole_day_period(start, end)
        if model.time_grain is not None:
            return [(p.window_start, p.end) for p in plan_series(model, lo, hi, week_start)]
        if model.lookback_days is not None:
            return [(hi - timedelta(days=model.lookback_days), hi)]
    except (MetricValidationError, OverflowError):
        return None  # the events path reports it
    return [(lo, hi)]


def _level_conditions(
    model: MetricDefinition, source: DataSource, rw: _Rewriter
) -> list[exp.Expression]:
    """The rollup rows of the definition's level: its filters, `*` for every other column."""
    conditions: list[exp.Expression] = []
    for name in ROLLUP_DIMENSIONS:
        column = exp.column(name)
        if name in model.filters:
            conditions += _filters({name: model.filters[name]}, source, rw)
        elif name in model.dimensions:
            conditions.append(exp.NEQ(this=column, expression=rw.binder.constant("all", ALL)))
        else:
            conditions.append(exp.EQ(this=column, expression=rw.binder.constant("all", ALL)))
    return conditions


def _rollup_value(answer: RollupAnswer, column: exp.Expression) -> exp.Expression:
    value: exp.Expression = exp.Sum(this=column)
    if answer.zero_when_empty:
        value = exp.cast(
            exp.Coalesce(this=value, expressions=[exp.Literal.number(0)]),
            exp.DataType.build("bigint"),
        )
    return value


def _rollup_parts(
    model: MetricDefinition, answer: RollupAnswer, source: DataSource, rw: _Rewriter, schema: str
) -> _Parts:
    """The same answer read from a rollup: its level's rows, its measure summed."""
    dimensions: list[exp.Expression] = [exp.column(d) for d in model.dimensions]
    return _Parts(
        dimensions,
        list(model.dimensions),
        _rollup_value(answer, exp.column(answer.measure)),
        _level_conditions(model, source, rw),
        _table(source, schema),
        exp.column(source.time_column),
    )


_MEASURE: Final = "cm_measure"


def _piece_select(
    model: MetricDefinition,
    answer: RollupAnswer,
    piece: Piece,
    level: Sequence[exp.Expression],
    bounds: tuple[exp.Expression, exp.Expression],
    schema: str,
) -> exp.Select:
    """One piece's rows of the level: the dimensions and the measure, not yet summed."""
    source = get_source(piece.table)
    period = exp.column(source.time_column)
    conditions = [
        *(c.copy() for c in level),
        exp.GTE(this=period.copy(), expression=bounds[0].copy()),
        exp.LT(this=period, expression=bounds[1].copy()),
    ]
    return (
        exp.select(
            *(exp.column(d) for d in model.dimensions),
            exp.alias_(exp.column(answer.measure), _MEASURE),
        )
        .from_(_table(source, schema))
        .where(exp.and_(*conditions))
    )


def _pieces_parts(
    model: MetricDefinition, answer: RollupAnswer, rw: _Rewriter, schema: str
) -> _Parts:
    """One window read from several rollups in one query: each piece's rows of the level
    (UNION ALL), summed per dimension. The pieces share their bound values (the level's
    filters, each edge between two pieces): DuckDB's client pays per parameter passed."""
    level = _level_conditions(model, get_source(answer.pieces[0].table), rw)
    edges = sorted({day for p in answer.pieces for day in (p.start, p.end)})
    marks = {day: rw.binder.constant(f"edge{i}", day) for i, day in enumerate(edges)}
    selects = [
        _piece_select(model, answer, p, level, (marks[p.start], marks[p.end]), schema)
        for p in answer.pieces
    ]
    union: exp.Query = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    rows = exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("cm_r")))
    return _Parts(
        [exp.column(d, table="cm_r") for d in model.dimensions],
        list(model.dimensions),
        _rollup_value(answer, exp.column(_MEASURE, table="cm_r")),
        [],
        rows,
        exp.column(_MEASURE),  # not bounded here: every piece bounds its own periods
    )


def validate_definition(definition: MetricDefinition | Mapping[str, Any]) -> MetricDefinition:
    """Compile for every dialect (without a period); returns the model when all accept it."""
    model = parse_definition(definition)
    # RETENTION reports the cohorts of a period: any period with a week and a month start will do.
    sample = (
        (date(2001, 1, 1), date(2001, 2, 1))
        if model.metric_type is MetricType.RETENTION
        else (None, None)
    )
    for dialect in DIALECTS:
        compile_metric(model, dialect, *sample, schema="metrics", week_start_index=0)
    return model
