"""The custom-metric tables on Spark: Parquet tables partitioned by `definition_id`.

Parquet tables cannot update or delete rows, so a change to a definition's rows (a new current
version, replaced values, a usage count) reads that definition's partition, changes the rows in
Python and writes the partition back with `INSERT OVERWRITE ... PARTITION (definition_id =
:id)`; the audit trail only appends. Every value is a bound parameter, the partition's too.
Spark has no transactions: a statement takes effect when it runs, and two processes writing the
same definition at once would overwrite each other (the local metastore admits one process).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from warehouse import Warehouse

PARTITION: Final = "definition_id"
_CHUNK: Final = 200


def spark_ddl(
    schema: str, definitions: str, values: str, calculations: str, usage: str
) -> list[str]:
    """CREATE statements for the four tables (named by the caller), each with `definition_id`
    last, as Spark keeps partition columns."""
    tables = {
        definitions: """version int, name string, description string,
            metric_type string, data_source string, calculation_formula string,
            percentile double, dimensions string, filters string, where_clause string,
            time_grain string, lookback_days int, options string, visibility string,
            owner string, team string, organization string, is_active boolean,
            is_current boolean, created_by string, created_at timestamp""",
        values: """definition_version int, period_start date, period_end date,
            dimensions string, value double, extra string, computed_at timestamp""",
        calculations: """calculation_id string, definition_version int,
            requested_by string, started_at timestamp, finished_at timestamp,
            period_start date, period_end date, duration_ms bigint, row_count bigint,
            status string, error string, cost_class string, estimated_cost double,
            timeout_ms bigint, answered_from string""",
        usage: """use_count bigint, last_used_at timestamp,
            last_used_by string""",
    }
    return [f"create schema if not exists {schema}"] + [
        f"create table if not exists {schema}.{table} ({columns}, {PARTITION} string) "
        f"using parquet partitioned by ({PARTITION})"
        for table, columns in tables.items()
    ]


def partition_rows(
    warehouse: Warehouse, table: str, columns: Sequence[str], definition_id: str
) -> list[dict[str, Any]]:
    """The rows of one definition in `table`, as dicts of `columns`."""
    rows = warehouse.query(
        f"select {', '.join(columns)} from {table} where {PARTITION} = {warehouse.param('id')}",
        {"id": definition_id},
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def rewrite_partition(
    warehouse: Warehouse,
    table: str,
    columns: Sequence[str],
    definition_id: str,
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Make `rows` (dicts of `columns`, without `definition_id`) the whole partition of
    `definition_id`: the first chunk overwrites it, further chunks are appended."""
    p = warehouse.param
    names = [c for c in columns if c != PARTITION]
    if not rows:
        warehouse.execute(
            f"alter table {table} drop if exists partition ({PARTITION} = {p('id')})",
            {"id": definition_id},
        )
        return
    for offset in range(0, len(rows), _CHUNK):
        params: dict[str, Any] = {"id": definition_id}
        tuples = []
        for i, row in enumerate(rows[offset : offset + _CHUNK]):
            for j, name in enumerate(names):
                params[f"v{i}_{j}"] = row[name]
            tuples.append("(" + ", ".join(p(f"v{i}_{j}") for j in range(len(names))) + ")")
        verb = "insert overwrite table" if offset == 0 else "insert into"
        warehouse.execute(
            f"{verb} {table} partition ({PARTITION} = {p('id')}) ({', '.join(names)}) "
            f"values {', '.join(tuples)}",
            params,
        )
