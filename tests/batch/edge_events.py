"""Hand-written events for the edge cases the rollups must get right, plus a generated stream."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from metrics_events import Event, GeneratorConfig, generate_events

PLUS_TWO = timezone(timedelta(hours=2))
MINUS_FIVE = timezone(timedelta(hours=-5))
EMPTY_DAY = date(2024, 3, 5)


def _at(text: str, tz: timezone = UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def _event(
    event_id: str,
    occurred_at: datetime,
    event_type: str = "page_view",
    actor_id: str | None = "user_a",
    entity: tuple[str, str] = ("asset", "asset_edge"),
    revenue_cents: int | None = None,
    ingested_after: timedelta = timedelta(seconds=5),
) -> Event:
    return Event(
        event_id=event_id,
        occurred_at=occurred_at,
        event_type=event_type,
        actor_id=actor_id,
        entity_type=entity[0],
        entity_id=entity[1],
        revenue_cents=revenue_cents,
        properties={"category": "edge"},
        ingested_at=occurred_at + ingested_after,
    )


def edge_events() -> list[Event]:
    """Leap day, weeks across months and years, offsets near midnight, gaps, duplicates, NULLs."""
    silent = ("asset", "asset_silent")
    events = [
        # A leap day, and a +02:00 timestamp just after local midnight that is still Feb 29 in UTC.
        _event("edge_leap_1", _at("2024-02-29 12:00:00"), "purchase", "user_b", revenue_cents=1250),
        _event(
            "edge_leap_2",
            _at("2024-03-01 01:30:00", PLUS_TWO),
            "purchase",
            "user_c",
            revenue_cents=2675,
        ),
        _event("edge_leap_3", _at("2024-03-01 00:00:00"), "purchase", None, revenue_cents=None),
        # Duplicates: the earliest ingestion wins even when a later delivery differs.
        _event(
            "edge_dup",
            _at("2024-02-28 23:59:59"),
            "click",
            "user_first",
            ingested_after=timedelta(seconds=1),
        ),
        _event(
            "edge_dup",
            _at("2024-02-28 23:59:59"),
            "click",
            "user_second",
            revenue_cents=999,
            ingested_after=timedelta(hours=3),
        ),
        _event(
            "edge_dup",
            _at("2024-02-28 23:59:59"),
            "click",
            "user_third",
            ingested_after=timedelta(days=2),
        ),
        # An entity active, silent for a whole week, then active again (growth after a gap).
        _event("edge_silent_1", _at("2024-02-19 10:00:00"), "click", "user_s", silent),
        _event("edge_silent_2", _at("2024-02-20 10:00:00"), "click", "user_s", silent),
        _event("edge_silent_3", _at("2024-03-04 10:00:00"), "click", "user_t", silent),
        # Revenue that is zero one week and positive the next (growth from 0 is NULL); a refund.
        _event("edge_refund", _at("2024-03-06 08:00:00"), "purchase", "user_b", revenue_cents=-500),
        # The week of 2024-12-30 crosses both a month and a year.
        _event("edge_year_1", _at("2024-12-30 09:00:00"), "page_view", "user_y"),
        _event(
            "edge_year_2",
            _at("2024-12-31 23:30:00", MINUS_FIVE),
            "purchase",
            "user_y",
            revenue_cents=4000,
        ),  # 2025-01-01 04:30 UTC
        _event("edge_year_3", _at("2025-01-01 00:00:00"), "page_view", None),
        _event("edge_year_4", _at("2025-01-05 23:59:59.999"), "page_view", "user_z"),
        _event("edge_year_5", _at("2025-01-06 00:00:00"), "page_view", "user_z"),
        _event("edge_year_6", _at("2024-12-23 12:00:00"), "page_view", "user_y"),
        _event("edge_year_7", _at("2024-12-29 23:59:59", UTC), "page_view", "user_y"),
    ]
    return events


def generated_events() -> list[Event]:
    """A realistic stream around the leap day, with one day left empty."""
    config = GeneratorConfig(
        start=date(2024, 2, 12),
        days=35,
        events_per_day=140,
        entities={"asset": 25, "license": 10, "org": 5},
        actors=120,
        seed=11,
    )
    return [e for e in generate_events(config) if e.event_date != EMPTY_DAY]


def all_events() -> list[Event]:
    return generated_events() + edge_events()
