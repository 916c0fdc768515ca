"""Rollup pages: keyset-paginated reads of the rollup tables, and how fresh each table is."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from serving.http.paging import decode_cursor, encode_cursor, fingerprint
from serving.http.problems import Problem
from warehouse import Warehouse
from warehouse.audit_table import AUDIT_TABLE
from warehouse.calendar import Grain
from warehouse.marts import DIMENSIONS, Mart, mart

CSV_CHUNK: Final = 5000


@dataclass(frozen=True)
class RowFilter:
    """The filters of a rollup request: dimensions (None = any) and a half-open date range."""

    entity_type: str | None = None
    entity_id: str | None = None
    event_type: str | None = None
    start: date | None = None
    end: date | None = None
    month: date | None = None  # the breakdown's month


def plain(value: Any) -> Any:
    """A warehouse value as JSON/CSV sees it: numerics as floats, the rest as they are."""
    if isinstance(value, Decimal):
        return float(value)
    return value


class RollupQuery:
    """Reads one rollup table in key order, a page or a stream at a time."""

    def __init__(self, table: str, row_filter: RowFilter, range_column: str | None = None) -> None:
        self.mart: Mart = mart(table)
        self.filter = row_filter
        self.key = self.mart.key
        self.columns = self.mart.column_names
        self.range_column = range_column or self.mart.period_column
        self.bound_to = fingerprint(
            [
                table,
                row_filter.entity_type,
                row_filter.entity_id,
                row_filter.event_type,
                str(row_filter.start),
                str(row_filter.end),
                str(row_filter.month),
            ]
        )

    def _sql(
        self, wh: Warehouse, after: Sequence[str] | None, limit: int
    ) -> tuple[str, dict[str, Any]]:
        p = wh.param
        where: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        for name in DIMENSIONS:
            value = getattr(self.filter, name)
            if value is not None:
                where.append(f"{name} = {p(name)}")
                params[name] = value
        if self.filter.start is not None:
            where.append(f"{self.range_column} >= {p('start')}")
            params["start"] = self.filter.start
        if self.filter.end is not None:
            where.append(f"{self.range_column} < {p('end')}")
            params["end"] = self.filter.end
        if self.filter.month is not None:
            where.append(f"month_start = {p('month')}")
            params["month"] = self.filter.month
        if after is not None:
            names = ", ".join(self.key)
            values = []
            for index, (name, text) in enumerate(zip(self.key, after, strict=True)):
                params[f"k{index}"] = date.fromisoformat(text) if name not in DIMENSIONS else text
                values.append(p(f"k{index}"))
            where.append(f"({names}) > ({', '.join(values)})")
        sql = (
            f"select {', '.join(self.columns)} from {wh.schema}.{self.mart.name}"
            + (f" where {' and '.join(where)}" if where else "")
            + f" order by {', '.join(self.key)} limit {p('limit')}"
        )
        return sql, params

    def _key_of(self, row: dict[str, Any]) -> list[str]:
        return [
            v.isoformat() if isinstance(v, date) else str(v) for v in (row[k] for k in self.key)
        ]

    def _fetch(
        self, wh: Warehouse, after: Sequence[str] | None, limit: int
    ) -> list[dict[str, Any]]:
        sql, params = self._sql(wh, after, limit)
        try:
            rows = wh.query(sql, params)
        except Exception:
            if not wh.table_exists(wh.schema, self.mart.name):
                raise Problem(
                    503,
                    f"{wh.schema}.{self.mart.name} does not exist yet: build the rollups first"
                    " (make demo, metrics backfill, or the Dagster UI)",
                    headers={"Retry-After": "60"},
                ) from None
            raise
        return [dict(zip(self.columns, map(plain, row), strict=True)) for row in rows]

    def check_cursor(self, cursor: str | None) -> None:
        """Raise the 422 a bad cursor deserves (before a stream starts)."""
        if cursor:
            decode_cursor(cursor, self.bound_to, len(self.key))

    def page(
        self, wh: Warehouse, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` rows after `cursor`, and the cursor of the next page (None: last)."""
        after = decode_cursor(cursor, self.bound_to, len(self.key)) if cursor else None
        rows = self._fetch(wh, after, limit + 1)
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor(self._key_of(rows[-1]), self.bound_to)

    def stream(self, wh: Warehouse, cursor: str | None = None) -> Iterator[dict[str, Any]]:
        """Every row after `cursor`, read in chunks in key order (for CSV: no row limit)."""
        after = decode_cursor(cursor, self.bound_to, len(self.key)) if cursor else None
        while True:
            rows = self._fetch(wh, after, CSV_CHUNK)
            yield from rows
            if len(rows) < CSV_CHUNK:
                return
            after = self._key_of(rows[-1])


def freshness(wh: Warehouse, grain: Grain, table: str) -> dict[str, Any]:
    """The latest partition of `grain` a run completed (from the job audit log), or, where no
    run was logged (tables built by dbt directly), the latest period the table holds."""
    latest: Any = None
    source = "audit_log"
    if wh.table_exists(wh.schema, AUDIT_TABLE):
        p = wh.param
        rows = wh.query(
            f"select max(partition_range_end) from {wh.schema}.{AUDIT_TABLE}"
            f" where grain in ({p('grain')}, {p('noun')}) and status = {p('status')}",
            {"grain": grain.adjective, "noun": grain.value, "status": "COMPLETED"},
        )
        latest = rows[0][0]
    if latest is None and wh.table_exists(wh.schema, table):
        source = "table"
        period = mart(table).period_column
        latest = wh.query(f"select max({period}) from {wh.schema}.{table}")[0][0]
    if latest is None:
        source = "none"
    return {
        "grain": grain.adjective,
        "latest_partition": latest.isoformat() if isinstance(latest, date) else None,
        "source": source,
    }
