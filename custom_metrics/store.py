"""Warehouse tables for custom metrics: versioned definitions, computed values, audit, usage.

One DDL serves PostgreSQL and DuckDB (DuckDB accepts PostgreSQL's type names); only the value
column differs (numeric on PostgreSQL, DOUBLE on DuckDB, whose NUMERIC would round to 3
decimals). Spark has its own DDL and rewrites a definition's partition where the others update
or delete rows (custom_metrics.spark_tables). Every statement uses bound parameters;
identifiers come from the configured schema only.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from custom_metrics.definitions import OPTION_FIELDS, MetricDefinition
from custom_metrics.spark_tables import PARTITION, spark_ddl
from warehouse import Warehouse
from warehouse.spark import partition_rows, rewrite_partition
from warehouse.timestamps import as_utc

log = logging.getLogger(__name__)

DEFINITIONS: Final = "custom_metric_definitions"
VALUES: Final = "custom_metric_values"
CALCULATIONS: Final = "custom_metric_calculations"
USAGE: Final = "custom_metric_usage"

_DEFINITION_COLUMNS: Final = (
    "definition_id",
    "version",
    "name",
    "description",
    "metric_type",
    "data_source",
    "calculation_formula",
    "percentile",
    "dimensions",
    "filters",
    "where_clause",
    "time_grain",
    "lookback_days",
    "options",
    "visibility",
    "owner",
    "team",
    "organization",
    "is_active",
    "is_current",
    "created_by",
    "created_at",
)
_VALUE_COLUMNS: Final = (
    "definition_id",
    "definition_version",
    "period_start",
    "period_end",
    "dimensions",
    "value",
    "extra",
    "computed_at",
)
_USAGE_COLUMNS: Final = ("definition_id", "use_count", "last_used_at", "last_used_by")
# Per period (start, end): its rows as (dimensions, value, extra columns).
PeriodRows = Sequence[tuple[date, date, Sequence[tuple[Mapping[str, Any], Any, Mapping[str, Any]]]]]


def _ddl(schema: str, value_type: str) -> list[str]:
    return [
        f"create schema if not exists {schema}",
        f"""create table if not exists {schema}.{DEFINITIONS} (
            definition_id text not null,
            version integer not null,
            name text not null,
            description text not null,
            metric_type text not null,
            data_source text not null,
            calculation_formula text not null,
            percentile double precision,
            dimensions text not null,
            filters text not null,
            where_clause text,
            time_grain text,
            lookback_days integer,
            options text,
            visibility text not null,
            owner text not null,
            team text,
            organization text,
            is_active boolean not null,
            is_current boolean not null,
            created_by text not null,
            created_at timestamptz not null,
            primary key (definition_id, version)
        )""",
        f"""create table if not exists {schema}.{VALUES} (
            definition_id text not null,
            definition_version integer not null,
            period_start date not null,
            period_end date not null,
            dimensions text not null,
            value {value_type},
            extra text,
            computed_at timestamptz not null,
            primary key (definition_id, definition_version, period_start, period_end, dimensions)
        )""",
        # Tables created before these columns existed get them (NULL: no options, no extras).
        f"alter table {schema}.{DEFINITIONS} add column if not exists options text",
        f"alter table {schema}.{VALUES} add column if not exists extra text",
        f"""create table if not exists {schema}.{CALCULATIONS} (
            calculation_id text primary key,
            definition_id text not null,
            definition_version integer not null,
            requested_by text not null,
            started_at timestamptz not null,
            finished_at timestamptz not null,
            period_start date not null,
            period_end date not null,
            duration_ms bigint not null,
            row_count bigint not null,
            status text not null,
            error text,
            cost_class text,
            estimated_cost double precision,
            timeout_ms bigint,
            answered_from text
        )""",
        f"alter table {schema}.{CALCULATIONS} add column if not exists answered_from text",
        f"""create table if not exists {schema}.{USAGE} (
            definition_id text primary key,
            use_count bigint not null,
            last_used_at timestamptz not null,
            last_used_by text not null
        )""",
    ]


@dataclass(frozen=True)
class StoredDefinition:
    """One version of a definition as stored, with its identity and history flags."""

    definition_id: str
    version: int
    definition: MetricDefinition
    is_current: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class CalculationRecord:
    """One row of the audit trail: who computed which version for which period, and how."""

    calculation_id: str
    definition_id: str
    definition_version: int
    requested_by: str
    started_at: datetime
    finished_at: datetime
    period_start: date
    period_end: date
    duration_ms: int
    row_count: int
    status: str
    error: str | None = None
    cost_class: str | None = None
    estimated_cost: float | None = None
    timeout_ms: int | None = None
    answered_from: str | None = None


@dataclass(frozen=True)
class Usage:
    """How often a definition was calculated, and the last time and user."""

    definition_id: str
    use_count: int
    last_used_at: datetime
    last_used_by: str


@dataclass(frozen=True)
class StoredValue:
    """One computed value: a definition version, a period, one combination of dimensions."""

    definition_id: str
    definition_version: int
    period_start: date
    period_end: date
    dimensions: dict[str, Any]
    value: float | Decimal | None
    computed_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default, separators=(",", ":"))


def _json_default(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def _options(definition: MetricDefinition) -> str | None:
    """The fields added for product analytics, as JSON (NULL when none is set)."""
    chosen = definition.model_dump(mode="json", include=set(OPTION_FIELDS), exclude_none=True)
    return _json(chosen) if chosen else None


def new_definition_id() -> str:
    """A short opaque id (`cm_` + 12 hex digits)."""
    return f"cm_{uuid.uuid4().hex[:12]}"


class MetricStore:
    """Reads and writes the custom-metric tables of one warehouse connection."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.schema = warehouse.schema

    def _t(self, table: str) -> str:
        return f"{self.schema}.{table}"

    def _p(self, name: str) -> str:
        return self.warehouse.param(name)

    @property
    def _spark(self) -> bool:
        return self.warehouse.dialect == "spark"

    def ensure_tables(self) -> None:
        """Create the schema and tables if missing (idempotent)."""
        if self._spark:
            statements = spark_ddl(self.schema, DEFINITIONS, VALUES, CALCULATIONS, USAGE)
        else:
            value_type = "numeric" if self.warehouse.dialect == "postgres" else "double"
            statements = _ddl(self.schema, value_type)
        for statement in statements:
            self.warehouse.execute(statement)

    # definitions -------------------------------------------------------------------------

    def insert_version(
        self,
        definition_id: str,
        version: int,
        definition: MetricDefinition,
        created_by: str,
        created_at: datetime,
    ) -> StoredDefinition:
        """Store a new current version; earlier versions stay as history (one transaction)."""
        row = {
            "definition_id": definition_id,
            "version": version,
            "name": definition.name,
            "description": definition.description,
            "metric_type": definition.metric_type.value,
            "data_source": definition.data_source,
            "calculation_formula": definition.calculation_formula or "",
            "percentile": definition.percentile,
            "dimensions": _json(list(definition.dimensions)),
            "filters": _json(definition.filters),
            "where_clause": definition.where,
            "time_grain": definition.time_grain.value if definition.time_grain else None,
            "lookback_days": definition.lookback_days,
            "options": _options(definition),
            "visibility": definition.visibility.value,
            "owner": definition.owner,
            "team": definition.team,
            "organization": definition.organization,
            "is_active": definition.is_active,
            "is_current": True,
            "created_by": created_by,
            "created_at": as_utc(created_at),
        }
        if self._spark:
            table = self._t(DEFINITIONS)
            versions = partition_rows(
                self.warehouse, table, _DEFINITION_COLUMNS, PARTITION, definition_id
            )
            history = [{**v, "is_current": False} for v in versions]
            rewrite_partition(
                self.warehouse,
                table,
                _DEFINITION_COLUMNS,
                PARTITION,
                definition_id,
                [*history, row],
            )
            return StoredDefinition(
                definition_id, version, definition, True, created_by, created_at
            )
        columns = ", ".join(_DEFINITION_COLUMNS)
        values = ", ".join(self._p(c) for c in _DEFINITION_COLUMNS)
        with self.warehouse.transaction():
            self.warehouse.execute(
                f"update {self._t(DEFINITIONS)} set is_current = false "
                f"where definition_id = {self._p('id')} and is_current",
                {"id": definition_id},
            )
            self.warehouse.execute(
                f"insert into {self._t(DEFINITIONS)} ({columns}) values ({values})", row
            )
        return StoredDefinition(definition_id, version, definition, True, created_by, created_at)

    def _select(self, where: str, params: Mapping[str, Any]) -> list[StoredDefinition]:
        rows = self.warehouse.query(
            f"select {', '.join(_DEFINITION_COLUMNS)} from {self._t(DEFINITIONS)} "
            f"where {where} order by created_at, definition_id, version",
            params,
        )
        found: list[StoredDefinition] = []
        for row in rows:
            record = dict(zip(_DEFINITION_COLUMNS, row, strict=True))
            try:
                found.append(self._from_row(record))
            except (ValueError, TypeError, KeyError) as error:
                # One damaged row (written by an older version, or by hand) must not hide the
                # others: it is skipped and reported, and the rest stay readable.
                log.warning(
                    "skipping unreadable custom metric definition %r version %r: %s",
                    record.get("definition_id"),
                    record.get("version"),
                    str(error).splitlines()[0],
                )
        return found

    @staticmethod
    def _from_row(row: dict[str, Any]) -> StoredDefinition:
        definition = MetricDefinition.model_validate(
            {
                "name": row["name"],
                "description": row["description"],
                "metric_type": row["metric_type"],
                "data_source": row["data_source"],
                "calculation_formula": row["calculation_formula"] or None,
                "percentile": row["percentile"],
                "dimensions": json.loads(row["dimensions"]),
                "filters": json.loads(row["filters"]),
                "where": row["where_clause"],
                "time_grain": row["time_grain"],
                "lookback_days": row["lookback_days"],
                **(json.loads(row["options"]) if row["options"] else {}),
                "visibility": row["visibility"],
                "owner": row["owner"],
                "team": row["team"],
                "organization": row["organization"],
                "is_active": row["is_active"],
            }
        )
        return StoredDefinition(
            row["definition_id"],
            int(row["version"]),
            definition,
            bool(row["is_current"]),
            row["created_by"],
            as_utc(row["created_at"]),
        )

    def get(self, definition_id: str, version: int | None = None) -> StoredDefinition | None:
        """The current version, or a given one; None if absent."""
        if version is None:
            found = self._select(
                f"definition_id = {self._p('id')} and is_current", {"id": definition_id}
            )
        else:
            found = self._select(
                f"definition_id = {self._p('id')} and version = {self._p('v')}",
                {"id": definition_id, "v": version},
            )
        return found[0] if found else None

    def history(self, definition_id: str) -> list[StoredDefinition]:
        """Every version, oldest first."""
        return sorted(
            self._select(f"definition_id = {self._p('id')}", {"id": definition_id}),
            key=lambda s: s.version,
        )

    def list_current(self, *, include_inactive: bool = False) -> list[StoredDefinition]:
        """The current version of every definition (active ones unless asked otherwise)."""
        where = "is_current" if include_inactive else "is_current and is_active"
        return self._select(where, {})

    # values ------------------------------------------------------------------------------

    def replace_values(
        self,
        definition_id: str,
        version: int,
        periods: PeriodRows,
        computed_at: datetime,
    ) -> None:
        """Make these rows the values of this version for each period, in one transaction
        (a re-run replaces, never duplicates)."""
        fresh = [
            {
                "definition_id": definition_id,
                "definition_version": version,
                "period_start": period_start,
                "period_end": period_end,
                "dimensions": _json(dict(dims)),
                "value": value,
                "extra": _json(dict(extra)) if extra else None,
                "computed_at": as_utc(computed_at),
            }
            for period_start, period_end, rows in periods
            for dims, value, extra in rows
        ]
        replaced = [(version, s, e) for s, e, _ in periods]
        if self._spark:
            self._replace_spark_values(definition_id, set(replaced), fresh)
            return
        insert = (
            f"insert into {self._t(VALUES)} ({', '.join(_VALUE_COLUMNS)}) "
            f"values ({', '.join(self._p(c) for c in _VALUE_COLUMNS)})"
        )
        delete = (
            f"delete from {self._t(VALUES)} where definition_id = {self._p('id')} "
            f"and definition_version = {self._p('v')} and period_start = {self._p('s')} "
            f"and period_end = {self._p('e')}"
        )
        with self.warehouse.transaction():
            for v, period_start, period_end in replaced:
                key = {"id": definition_id, "v": v, "s": period_start, "e": period_end}
                self.warehouse.execute(delete, key)
            self.warehouse.executemany(insert, fresh)

    def _replace_spark_values(
        self, definition_id: str, replaced: set[tuple[int, date, date]], fresh: list[dict[str, Any]]
    ) -> None:
        """The definition's other values stay; the replaced periods' rows are `fresh`."""
        table = self._t(VALUES)
        kept = [
            r
            for r in partition_rows(self.warehouse, table, _VALUE_COLUMNS, PARTITION, definition_id)
            if (r["definition_version"], r["period_start"], r["period_end"]) not in replaced
        ]
        doubles = [  # the value column is a DOUBLE, as on DuckDB
            {**r, "value": None if r["value"] is None else float(r["value"])} for r in fresh
        ]
        rewrite_partition(
            self.warehouse, table, _VALUE_COLUMNS, PARTITION, definition_id, kept + doubles
        )

    def values(self, definition_id: str) -> list[StoredValue]:
        """Every stored value of a definition (all versions), by period."""
        rows = self.warehouse.query(
            "select definition_id, definition_version, period_start, period_end, dimensions, "
            f"value, computed_at, extra from {self._t(VALUES)} "
            f"where definition_id = {self._p('id')} "
            "order by definition_version, period_start, period_end, dimensions",
            {"id": definition_id},
        )
        return [
            StoredValue(
                r[0],
                int(r[1]),
                r[2],
                r[3],
                json.loads(r[4]),
                r[5],
                as_utc(r[6]),
                json.loads(r[7]) if r[7] else {},
            )
            for r in rows
        ]

    # audit and usage ---------------------------------------------------------------------

    def record_calculation(self, record: CalculationRecord) -> None:
        """Append one audit row."""
        fields = list(record.__dataclass_fields__)
        params = {f: getattr(record, f) for f in fields}
        self.warehouse.execute(
            f"insert into {self._t(CALCULATIONS)} ({', '.join(fields)}) "
            f"values ({', '.join(self._p(f) for f in fields)})",
            params,
        )

    def calculations(self, definition_id: str | None = None) -> list[CalculationRecord]:
        """The audit trail, oldest first (optionally for one definition)."""
        fields = list(CalculationRecord.__dataclass_fields__)
        where, params = "", {}
        if definition_id is not None:
            where, params = f"where definition_id = {self._p('id')}", {"id": definition_id}
        rows = self.warehouse.query(
            f"select {', '.join(fields)} from {self._t(CALCULATIONS)} {where} "
            "order by started_at, calculation_id",
            params,
        )
        return [CalculationRecord(**dict(zip(fields, r, strict=True))) for r in rows]

    def touch_usage(self, definition_id: str, user: str, when: datetime) -> None:
        """Count one use of a definition and remember when and by whom."""
        if self._spark:
            table = self._t(USAGE)
            found = partition_rows(self.warehouse, table, _USAGE_COLUMNS, PARTITION, definition_id)
            count = int(found[0]["use_count"]) + 1 if found else 1
            row = {"use_count": count, "last_used_at": as_utc(when), "last_used_by": user}
            rewrite_partition(
                self.warehouse, table, _USAGE_COLUMNS, PARTITION, definition_id, [row]
            )
            return
        self.warehouse.execute(
            f"insert into {self._t(USAGE)} as u (definition_id, use_count, last_used_at, "
            f"last_used_by) values ({self._p('id')}, 1, {self._p('at')}, {self._p('by')}) "
            "on conflict (definition_id) do update set use_count = u.use_count + 1, "
            "last_used_at = excluded.last_used_at, last_used_by = excluded.last_used_by",
            {"id": definition_id, "at": as_utc(when), "by": user},
        )

    def usage(self, definition_id: str) -> Usage | None:
        rows = self.warehouse.query(
            f"select definition_id, use_count, last_used_at, last_used_by from {self._t(USAGE)} "
            f"where definition_id = {self._p('id')}",
            {"id": definition_id},
        )
        if not rows:
            return None
        r = rows[0]
        return Usage(r[0], int(r[1]), as_utc(r[2]), r[3])
