"""The week start setting, the window's validation, the reserved '*' data test, and an event_id
that arrives again on another day."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from tests.batch.edge_events import edge_events
from tests.batch.harness import BatchHarness
from warehouse.dbt_runner import DbtRunError, run_dbt


def test_week_start_sunday_moves_weeks(
    duckdb_batch: BatchHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_WEEK_START", "sunday")
    events = edge_events()
    duckdb_batch.load(events)
    duckdb_batch.build()
    duckdb_batch.assert_matches_reference(events, week_start_index=6)
    weeks = {key[0] for key in duckdb_batch.fetch("weekly_metrics")}
    assert all(week.weekday() == 6 for week in weeks), weeks


@pytest.mark.parametrize(
    ("vars_", "message"),
    [
        ({"min_date": "2024-03-01"}, "Pass both min_date and max_date"),
        ({"min_date": "2024-03-05", "max_date": "2024-03-01"}, "min_date must be before max_date"),
        ({"min_date": "2024-03-01", "max_date": "2024-3-2"}, "must be a date written YYYY-MM-DD"),
    ],
)
def test_bad_window_is_a_clear_error(
    duckdb_batch: BatchHarness,
    vars_: dict[str, str],
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    duckdb_batch.load(edge_events())
    with pytest.raises(DbtRunError) as raised:
        run_dbt("build", vars=vars_, target_path=duckdb_batch.dbt_target_path)
    assert message in str(raised.value) or message in caplog.text


@pytest.mark.parametrize("batch", ["duckdb", "postgres"], indirect=True)
def test_reserved_star_in_source_fails_the_build(batch: BatchHarness) -> None:
    """The source's row rules are one test (one scan); the error names each broken rule, its
    column and how many rows break it (on DuckDB and PostgreSQL)."""
    first = edge_events()[0]
    bad = [
        replace(first, event_id="bad_star", entity_id="*"),
        replace(first, event_id="bad_star_2", entity_id="*"),
        replace(first, event_id="bad_type", event_type="*"),
    ]
    batch.load([*edge_events(), *bad])
    with pytest.raises(DbtRunError) as raised:
        batch.build()
    message = str(raised.value)
    assert "raw_events_row_rules: fail: Got 2 results" in message
    for column, rows in (("entity_id", 2), ("event_type", 1)):
        assert (
            f"rule_name=not_reserved_star, column_name={column}, failing_rows={rows}, "
            f'reason=the value * is reserved for "all" in the rollups and must not appear in '
            f"{column}"
        ) in message
    assert "column_name=entity_type" not in message  # only the rules that were broken


def test_window_helper_rejects_inverted_window() -> None:
    from warehouse.dbt_runner import window_vars

    with pytest.raises(ValueError, match="before"):
        window_vars(date(2024, 3, 2), date(2024, 3, 1))


def test_full_refresh_with_a_window_is_refused(duckdb_batch: BatchHarness) -> None:
    duckdb_batch.load(edge_events())
    duckdb_batch.build()
    with pytest.raises(DbtRunError, match="cannot be combined with a window"):
        run_dbt(
            "build",
            vars={"min_date": "2024-03-01", "max_date": "2024-03-02"},
            extra_args=["--full-refresh"],
            target_path=duckdb_batch.dbt_target_path,
        )
    assert duckdb_batch.fetch("daily_metrics"), "the tables were left as they were"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("METRICS_SOURCE_SCHEMA", 'raw"."events" where 1=0 union all select * from "dbt"."other'),
        ("METRICS_SOURCE_SCHEMA", "raw events"),
        ("METRICS_SCHEMA", 'metrics"; drop table "x'),
        ("METRICS_SCHEMA", "1metrics"),
    ],
)
def test_dbt_refuses_a_schema_that_is_not_a_plain_identifier(
    duckdb_batch: BatchHarness, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """dbt quotes schema names without escaping them, so it checks them itself: dbt run on its
    own (without the Python configuration's check) stops with an error naming the setting."""
    duckdb_batch.load(edge_events())
    monkeypatch.setenv(variable, value)
    with pytest.raises(DbtRunError) as raised:
        run_dbt("build", target_path=duckdb_batch.dbt_target_path)
    assert f"{variable}=" in str(raised.value)
    assert "is not a plain SQL identifier" in str(raised.value)


def test_an_event_id_again_on_another_day_fails_the_later_run(batch: BatchHarness) -> None:
    """A re-delivery must repeat occurred_at. One that moves the event to another day, built by
    another run than the first delivery, would count the event twice: every warehouse fails that
    run naming the id (PostgreSQL's unique index, the data test elsewhere). A full build keeps
    the earliest delivery and counts the event once."""
    events = edge_events()
    first = next(e for e in events if e.event_id == "edge_leap_1")  # 2024-02-29
    batch.load(events)
    batch.build(date(2024, 2, 29), date(2024, 3, 1))
    moved = replace(
        first,
        occurred_at=first.occurred_at + timedelta(days=2),
        ingested_at=first.ingested_at + timedelta(days=2),
    )
    batch.load([moved])
    with pytest.raises(DbtRunError) as raised:
        batch.build(date(2024, 3, 2), date(2024, 3, 3))
    assert "edge_leap_1" in str(raised.value)
    if batch.target != "postgres":
        assert "event_date=2024-03-02, also_on=2024-02-29" in str(raised.value)
    batch.build(full_refresh=True)
    batch.assert_matches_reference([*events, moved])
