"""The custom-metric tables on Spark: Parquet tables partitioned by `definition_id`.

Parquet tables cannot update or delete rows, so a change to a definition's rows (a new current
version, replaced values, a usage count) reads that definition's partition, changes the rows in
Python and writes the partition back in one `INSERT OVERWRITE` from a typed DataFrame
(warehouse.spark.rewrite_partition); the audit trail only appends. Values are bound parameters
or DataFrame data, never SQL text. Spark has no transactions: a statement takes effect when it
runs, and two processes writing the same definition at once would overwrite each other.
"""

from __future__ import annotations

from typing import Final

PARTITION: Final = "definition_id"


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
