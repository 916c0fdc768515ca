"""The models are portable SQL: compiled by dbt, they transpile to other warehouses' dialects.

A step toward "any dbt adapter": every compiled model parses with sqlglot and transpiles to
Snowflake and BigQuery without unsupported constructs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from tests.batch.harness import BatchHarness
from warehouse.dbt_runner import run_dbt

MODELS = (
    "stg_events",
    "daily_metrics",
    "weekly_metrics",
    "monthly_metrics",
    "monthly_weekly_breakdown",
)


def _compiled_sql(target_path: Path, model: str) -> str:
    matches = list((target_path / "compiled").rglob(f"{model}.sql"))
    assert matches, f"no compiled SQL for {model} under {target_path}"
    return matches[0].read_text()


@pytest.mark.parametrize("dialect", ["snowflake", "bigquery"])
def test_compiled_models_transpile_to_another_warehouse(
    duckdb_batch: BatchHarness, dialect: str
) -> None:
    from tests.batch.edge_events import edge_events

    duckdb_batch.load(edge_events())
    run_dbt("compile", select=MODELS, target_path=duckdb_batch.dbt_target_path)
    for model in MODELS:
        sql = _compiled_sql(duckdb_batch.dbt_target_path, model)
        transpiled = sqlglot.transpile(
            sql, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE
        )
        assert len(transpiled) == 1 and "select" in transpiled[0].lower(), model
