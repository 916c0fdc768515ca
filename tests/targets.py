"""The warehouses a test can run on: DuckDB and PostgreSQL always, Spark under the `spark`
marker (make test-spark)."""

from __future__ import annotations

from typing import Final

import pytest

EVERY_WAREHOUSE: Final = ("duckdb", "postgres", pytest.param("spark", marks=pytest.mark.spark))


def on_every_warehouse(fixture: str) -> pytest.MarkDecorator:
    """Run the test once per warehouse, handing each name to `fixture` (request.param)."""
    return pytest.mark.parametrize(fixture, EVERY_WAREHOUSE, indirect=True)
