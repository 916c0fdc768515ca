"""What a failed dbt data test found: the first rows its query returns, so that an error says
which rule broke and where (`row_rules` returns one row per broken rule), not only how many.

dbt reports a failed test as "Got N results"; its compiled SQL (in run_results.json, or on the
in-process result's node) is the query whose rows those are. Read only after a test failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from warehouse.connection import Warehouse

Key = TypeVar("Key")

ROWS_SHOWN = 5


def failing_rows(wh: Warehouse, compiled_sql: str, limit: int = ROWS_SHOWN) -> str:
    """The first `limit` rows of a data test's query, `column=value, ...` each, joined by ' | '
    (a note instead if the query cannot be read back)."""
    query = compiled_sql.strip().rstrip(";")
    try:
        rows, columns = wh.query_with_columns(
            f"select * from (\n{query}\n) as failing_rows limit {int(limit)}"
        )
    except Exception as error:  # the failure itself is already reported; this only adds detail
        return f"(its rows could not be read back: {type(error).__name__}: {error})"
    return " | ".join(
        ", ".join(f"{column}={value}" for column, value in zip(columns, row, strict=True))
        for row in rows
    )


def failed_tests_rows(wh: Warehouse, compiled_sql: Mapping[Key, str]) -> dict[Key, str]:
    """`failing_rows` of each failed test's compiled SQL, over one open connection (on Spark,
    one from `open_warehouse`, which reads what dbt has just written)."""
    return {key: failing_rows(wh, sql) for key, sql in compiled_sql.items()}


def is_failed_test(resource_type: str, status: str) -> bool:
    """A dbt data test that ran and found rows (not one that could not run)."""
    return resource_type == "test" and status.lower() == "fail"


def with_failing_rows(message: str, found: str | None) -> str:
    """A failed node's message, followed by what its test found, if anything."""
    return f"{message}; failing rows: {found}" if found else message
