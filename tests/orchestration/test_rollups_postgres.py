"""Through Dagster on PostgreSQL: every edge-case event (Feb-Mar 2024 and the Dec 2024 / Jan 2025
year boundary) backfilled in one run per grain gives the reference tables, with rows written
taken from dbt's adapter response."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from dagster import AssetKey, AssetRecordsFilter

from orchestration.partitions import Grain
from tests.batch.edge_events import all_events
from tests.orchestration.conftest import (
    BuiltWarehouse,
    assert_each_run_logged_completed,
    assert_rollups_answer_like_the_events,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

START, END = date(2024, 2, 1), date(2025, 2, 1)


@pytest.fixture(scope="module")
def built(build_warehouse: Any, pg_database: dict[str, str]) -> BuiltWarehouse:
    return build_warehouse(  # type: ignore[no-any-return]
        "postgres", all_events(), START, END, pg=pg_database
    )


@pytest.fixture()
def pg(built: BuiltWarehouse, monkeypatch: pytest.MonkeyPatch) -> BuiltWarehouse:
    return built.use(monkeypatch)


def test_one_run_per_grain_matches_the_reference(pg: BuiltWarehouse) -> None:
    assert pg.dbt_calls.by_op() == {"daily_rollups": 1, "weekly_rollups": 1, "monthly_rollups": 1}
    assert len(pg.runs[Grain.DAY].keys) == 366
    assert_each_run_logged_completed(pg)
    pg.harness.assert_matches_reference(pg.events)


def test_rows_written_come_from_the_adapter_response(pg: BuiltWarehouse) -> None:
    materialization = (
        pg.instance.fetch_materializations(
            AssetRecordsFilter(
                asset_key=AssetKey(["metrics", "weekly_metrics"]), asset_partitions=["2024-03-04"]
            ),
            limit=1,
        )
        .records[0]
        .asset_materialization
    )
    assert materialization is not None
    metadata = materialization.metadata
    assert metadata["rows_written_from"].value == "dbt adapter_response.rows_affected"
    # window_replace deletes the window's periods (and the next week) and inserts them again:
    # the rows inserted are exactly the rows now in that range.
    with pg.harness.connect() as wh:
        in_range = wh.query(
            f"select count(*) from {wh.schema}.weekly_metrics "
            "where week_start >= '2024-01-29' and week_start <= '2025-02-03'"
        )[0][0]
    assert metadata["rows_written"].value == in_range
    # when the model's SQL ran, as dbt timed it: within the run, start before end
    started = metadata["dbt_execute_started_at"].value
    completed = metadata["dbt_execute_completed_at"].value
    assert isinstance(started, float) and isinstance(completed, float)
    assert started <= completed


def test_custom_metrics_read_the_built_rollups(pg: BuiltWarehouse) -> None:
    """The rollups dbt built carry the level index, and the audit log the Dagster runs wrote
    lets a custom metric over a window with mid-month edges read them, equal to the events."""
    window = (date(2024, 2, 28), date(2024, 5, 27))  # 28-29 February, March, weeks to 27 May
    with pg.harness.connect() as wh:
        for table, period in (("daily_metrics", "metric_date"), ("monthly_metrics", "month_start")):
            defs = [
                r[0]
                for r in wh.query(
                    "select indexdef from pg_indexes "
                    "where schemaname = %(s)s and tablename = %(t)s",
                    {"s": wh.schema, "t": table},
                )
            ]
            assert any(f"(entity_type, entity_id, {period})" in d for d in defs), defs
        assert_rollups_answer_like_the_events(wh, window)
