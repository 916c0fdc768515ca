"""Every rollup equals the plain-Python reference, on DuckDB and PostgreSQL, through full builds,
re-runs, overlapping windows, deletions and late data."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from metrics_events import Event
from tests.batch.edge_events import all_events
from tests.batch.harness import TABLES, BatchHarness, assert_same_rows

pytestmark = pytest.mark.slow


def test_full_build_then_unchanged_rerun(batch: BatchHarness) -> None:
    events = all_events()
    batch.load(events)
    batch.build()
    batch.assert_matches_reference(events)

    before = {table: batch.fetch(table) for table in TABLES}
    batch.build(date(2024, 2, 27), date(2024, 3, 2))
    batch.build(date(2024, 12, 31), date(2025, 1, 1))
    for table in TABLES:
        assert_same_rows(table, batch.fetch(table), before[table])


def test_overlapping_windows_from_empty_tables(batch: BatchHarness) -> None:
    events = all_events()
    batch.load(events)
    # Built only through windows, some overlapping, in no particular order.
    batch.build(date(2024, 2, 25), date(2024, 3, 20))
    batch.build(date(2024, 2, 1), date(2024, 3, 1))
    batch.build(date(2024, 12, 1), date(2025, 2, 1))
    batch.build(date(2024, 3, 10), date(2024, 4, 1))
    batch.assert_matches_reference(events)


def test_deleted_and_late_events_then_rebuild_from_scratch(batch: BatchHarness) -> None:
    events = all_events()
    batch.load(events)
    batch.build()

    # Events vanish from one day (including a whole entity's only rows that day) ...
    gone_day = date(2024, 3, 6)
    gone = [e for e in events if e.event_date == gone_day and e.event_type != "page_view"]
    batch.delete(e.event_id for e in gone)
    # ... and late events arrive for an earlier day, one of them for a brand-new entity.
    late_day = date(2024, 2, 29)
    template = next(e for e in events if e.event_date == late_day)
    late = [
        replace(
            template,
            event_id=f"late_{i}",
            entity_id="asset_brand_new" if i < 2 else template.entity_id,
            actor_id=f"late_user_{i}",
            revenue_cents=100 * i,
            ingested_at=template.ingested_at + timedelta(days=9),
        )
        for i in range(5)
    ]
    batch.load(late)
    gone_ids = {e.event_id for e in gone}
    now: list[Event] = [e for e in events if e.event_id not in gone_ids] + late

    batch.build(gone_day, gone_day + timedelta(days=1))
    batch.build(late_day, late_day + timedelta(days=1))
    batch.assert_matches_reference(now)
    incremental = {table: batch.fetch(table) for table in TABLES}

    # A rebuild from the source alone, into a fresh schema, equals the maintained tables.
    fresh = batch.schema + "_fresh"
    import os

    os.environ["METRICS_SCHEMA"] = fresh
    batch.build(full_refresh=True)
    for table in TABLES:
        assert_same_rows(table, batch.fetch(table, schema=fresh), incremental[table])


def test_a_day_whose_events_all_vanished(batch: BatchHarness) -> None:
    """Every event of the leap day is deleted: its window re-run leaves no row for that day,
    and its week and month (and their growth after it) equal the reference without it."""
    events = all_events()
    batch.load(events)
    batch.build()
    day = date(2024, 2, 29)
    batch.delete(e.event_id for e in events if e.event_date == day)
    batch.build(day, day + timedelta(days=1))
    batch.assert_matches_reference([e for e in events if e.event_date != day])
    assert not [key for key in batch.fetch("daily_metrics") if key[0] == day]
