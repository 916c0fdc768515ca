"""One window read from several rollups: whole months, whole weeks and the days left, in one
query, equal to the events and to plain Python across a year's end and a leap day; and the
freshness check: the rollups answer only when the audit log records builds of every period
read and no event of the window arrived after them, else the events answer and say why."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import CustomMetricService, Principal, compile_metric
from custom_metrics.rollup_answers import Piece, cover
from tests.custom_metrics.support import (
    BUILT_AT,
    answer_of,
    as_result,
    assert_same,
    both_paths,
    duckdb_warehouse,
    insert_rows,
    load_sources,
    make_rollups,
    postgres_warehouse,
    record_builds,
    window_reference,
)
from tests.custom_metrics.test_rollup_answers import d
from warehouse import Warehouse
from warehouse.calendar import Grain

OWNER = Principal("cover", "analytics", "acme")
FIRST, LAST = date(2023, 12, 10), date(2024, 3, 20)  # a year's end and 29 February between
EVENT_TYPES = ["page_view", "click", "purchase"]
ENTITY_TYPES = ["asset", "license", "org"]


def fewest_periods(lo: date, hi: date, week_start: int) -> int:
    """The fewest whole days, weeks (from `week_start`) and months that tile [lo, hi)."""
    n = (hi - lo).days
    best = [0] + [n + 1] * n
    for i in range(n):
        day = lo + timedelta(days=i)
        steps = [1]
        if day.weekday() == week_start:
            steps.append(7)
        if day.day == 1 and day < date(9999, 12, 1):
            following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
            steps.append((following - day).days)
        for step in steps:
            if i + step <= n:
                best[i + step] = min(best[i + step], best[i] + 1)
    return best[n]


def _aligned(piece: Piece, week_start: int) -> bool:
    if piece.grain is Grain.MONTH:
        return piece.start.day == 1 and piece.end.day == 1
    if piece.grain is Grain.WEEK:
        return piece.start.weekday() == week_start and (piece.end - piece.start).days % 7 == 0
    return True


def test_cover_tiles_the_window_with_the_fewest_periods() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        lo = date(2022, 11, 1) + timedelta(days=rng.randrange(900))
        hi = lo + timedelta(days=rng.choice([rng.randrange(1, 100), rng.randrange(1, 700)]))
        week_start = rng.randrange(7)
        pieces = cover(lo, hi, week_start)
        assert pieces[0].start == lo and pieces[-1].end == hi
        assert all(
            a.end == b.start and a.grain is not b.grain for a, b in itertools.pairwise(pieces)
        )
        assert all(_aligned(p, week_start) for p in pieces), pieces
        assert sum(p.periods for p in pieces) == fewest_periods(lo, hi, week_start), (lo, hi)


def test_cover_at_the_ends_of_the_calendar() -> None:
    assert cover(date(1, 1, 1), date(1, 1, 3), 0) == (
        Piece(Grain.DAY, date(1, 1, 1), date(1, 1, 3)),
    )
    lo, hi = date(9999, 10, 20), date(9999, 12, 31)  # no month or week start after hi
    pieces = cover(lo, hi, 0)
    assert (pieces[0].start, pieces[-1].end) == (lo, hi)
    assert sum(p.periods for p in pieces) == fewest_periods(lo, hi, 0)


def make_span_events(n: int = 2500, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC)
    seconds = (LAST - FIRST).days * 86400
    rows = []
    for i in range(n):
        occurred = start + timedelta(seconds=rng.randrange(seconds))
        entity_type = rng.choice(ENTITY_TYPES)
        rows.append(
            {
                "event_id": f"s{i:05d}",
                "occurred_at": occurred,
                "event_date": occurred.date(),
                "event_type": rng.choice(EVENT_TYPES),
                "actor_id": None if rng.random() < 0.1 else f"u{rng.randrange(80)}",
                "entity_type": entity_type,
                "entity_id": f"{entity_type[0]}{rng.randrange(12)}",
                "revenue_cents": rng.choice([None, 0, rng.randrange(1, 50_000)]),
                "properties": None,
                "ingested_at": occurred + timedelta(minutes=rng.randrange(0, 300)),
            }
        )
    return rows


SPAN_EVENTS = make_span_events()


def _open(dialect: str, tmp_path: Path, pg: dict[str, str] | None) -> Warehouse:
    schema = f"cov_{uuid.uuid4().hex[:8]}"
    if dialect == "duckdb":
        return duckdb_warehouse(tmp_path / f"wh_{schema}.duckdb", schema)
    assert pg is not None
    return postgres_warehouse(pg, schema)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def span_wh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    pg = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    wh = _open(request.param, tmp_path_factory.mktemp("cover"), pg)
    load_sources(wh, SPAN_EVENTS, make_rollups(SPAN_EVENTS), built=(FIRST, LAST))
    yield wh
    wh.close()


ASSET_BY_EVENT = d("COUNT", "*", filters={"entity_type": "asset"}, dimensions=["event_type"])
ORG_CLICKS_BY_ID = d(
    "COUNT",
    "count(*)",
    filters={"entity_type": "org", "event_type": "click"},
    dimensions=["entity_id"],
)
REVENUE_BY_TYPE = d("SUM", "coalesce(revenue_cents, 0)", dimensions=["entity_type"])
ALL_EVENTS = d("COUNT", "*")

# (id, definition, start, end, the rollups read)
# The windows and the rollups they read, by test id.
SPAN_CASES = {
    "across-new-year": (ASSET_BY_EVENT, date(2023, 12, 18), date(2024, 1, 17), "weekly+daily"),
    "90-days-mid-month": (ASSET_BY_EVENT, date(2023, 12, 15), date(2024, 3, 14), "all"),
    "leap-week": (ORG_CLICKS_BY_ID, date(2024, 2, 26), date(2024, 3, 4), "weekly"),
    "leap-days": (REVENUE_BY_TYPE, date(2024, 2, 28), date(2024, 3, 2), "daily"),
    "five-weeks-beat-february": (
        REVENUE_BY_TYPE,
        date(2024, 1, 29),
        date(2024, 3, 6),
        "weekly+daily",
    ),
    "leap-february-and-days": (
        REVENUE_BY_TYPE,
        date(2024, 1, 31),
        date(2024, 3, 2),
        "monthly+daily",
    ),
    "whole-winter": (ALL_EVENTS, date(2023, 12, 1), date(2024, 3, 1), "monthly"),
    "year-end-days": (ALL_EVENTS, date(2023, 12, 29), date(2024, 1, 2), "daily"),
    "org-clicks-across-years": (ORG_CLICKS_BY_ID, date(2023, 12, 20), date(2024, 3, 3), "all"),
}
SOURCES = {
    "all": "monthly_metrics+weekly_metrics+daily_metrics",
    "weekly+daily": "weekly_metrics+daily_metrics",
    "monthly+daily": "monthly_metrics+daily_metrics",
    "weekly": "weekly_metrics",
    "daily": "daily_metrics",
    "monthly": "monthly_metrics",
}


def python_answer(definition: dict[str, Any], start: date, end: date) -> dict[Any, Any]:
    filters = definition.get("filters", {})
    dims = definition.get("dimensions", [])

    def keep(row: Mapping[str, Any]) -> bool:
        return all(row[k] == v for k, v in filters.items())

    def value(rows: list[Mapping[str, Any]]) -> Any:
        if definition["metric_type"] == "COUNT":
            return len(rows)
        return sum(r["revenue_cents"] or 0 for r in rows) if rows else None

    return window_reference(SPAN_EVENTS, dims, keep, value, (start, end))


@pytest.mark.parametrize("case", SPAN_CASES)
def test_any_window_from_the_rollups_equals_the_events(span_wh: Warehouse, case: str) -> None:
    wh = span_wh
    definition, start, end, read = SPAN_CASES[case]
    fast, slow = both_paths(wh, definition, start, end)
    assert fast.answered_from == SOURCES[read] and slow.answered_from == "events"
    assert "stg_events" not in fast.sql
    from_rollups = answer_of(wh, fast)
    from_events = answer_of(wh, slow)
    assert_same(from_events, python_answer(definition, start, end))
    assert from_rollups == from_events  # equal values and types, not only close


def test_a_rolling_window_is_read_from_the_rollups(span_wh: Warehouse) -> None:
    rolling = {**ASSET_BY_EVENT, "lookback_days": 90}
    start, end = date(2024, 3, 10), date(2024, 3, 16)  # the look-back fixes the window's start
    fast = compile_metric(
        rolling, span_wh.dialect, start, end, schema=span_wh.schema, week_start_index=0
    )
    assert fast.answered_from == SOURCES["all"]
    assert fast.period == (date(2023, 12, 17), end)
    got = as_result(span_wh.query(fast.sql, fast.params))
    assert_same(got, python_answer(ASSET_BY_EVENT, date(2023, 12, 17), end))


def test_the_service_reads_fresh_rollups(span_wh: Warehouse) -> None:
    service = CustomMetricService(span_wh, OWNER)
    run = service.test_metric_definition(ASSET_BY_EVENT, date(2023, 12, 15), date(2024, 3, 14))
    assert run.answered_from == SOURCES["all"] and run.fallback_reason is None
    assert_same(
        as_result(run.rows), python_answer(ASSET_BY_EVENT, date(2023, 12, 15), date(2024, 3, 14))
    )


# ---- freshness: fall back to the events when the rollups do not hold the window ----------

WINDOW = (date(2023, 12, 20), date(2024, 3, 3))  # days, a week, January, February, days


@pytest.fixture(params=["duckdb", "postgres"])
def bare_wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """A fifth of the span's events and their rollups, no build recorded yet (each test
    records its own)."""
    pg = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    wh = _open(request.param, tmp_path, pg)
    events = SPAN_EVENTS[::5]
    load_sources(wh, events, make_rollups(events), built=(FIRST, FIRST + timedelta(days=1)))
    wh.execute(f"delete from {wh.schema}.metrics_aggregation_jobs_log")
    yield wh
    wh.close()


def _answer(wh: Warehouse) -> Any:
    service = CustomMetricService(wh, OWNER)
    return service.test_metric_definition(ASSET_BY_EVENT, *WINDOW)


def _events_answer(wh: Warehouse) -> dict[Any, Any]:
    slow = compile_metric(ASSET_BY_EVENT, wh.dialect, *WINDOW, schema=wh.schema, use_rollups=False)
    return answer_of(wh, slow)


def test_built_windows_are_read_from_the_rollups(bare_wh: Warehouse) -> None:
    record_builds(bare_wh, (FIRST, LAST), BUILT_AT)
    run = _answer(bare_wh)
    assert run.answered_from == SOURCES["all"] and run.fallback_reason is None
    assert as_result(run.rows) == _events_answer(bare_wh)


def test_no_build_recorded_reads_the_events(bare_wh: Warehouse) -> None:
    bare_wh.execute(f"drop table {bare_wh.schema}.metrics_aggregation_jobs_log")
    run = _answer(bare_wh)
    assert run.answered_from == "events"
    assert run.fallback_reason is not None and "audit log is missing" in run.fallback_reason
    assert as_result(run.rows) == _events_answer(bare_wh)


def test_a_window_after_the_latest_build_reads_the_events(bare_wh: Warehouse) -> None:
    # Days built up to 1 March only: the window's last day (2 March) is not built yet.
    record_builds(bare_wh, (FIRST, date(2024, 3, 2)), BUILT_AT, ["daily"])
    record_builds(bare_wh, (FIRST, LAST), BUILT_AT, ["weekly", "monthly"])
    run = _answer(bare_wh)
    assert run.answered_from == "events"
    assert "daily_metrics is not built for daily 2024-03-02" in (run.fallback_reason or "")
    assert as_result(run.rows) == _events_answer(bare_wh)


def test_a_failed_rebuild_reads_the_events(bare_wh: Warehouse) -> None:
    record_builds(bare_wh, (FIRST, LAST), BUILT_AT)
    later = BUILT_AT + timedelta(hours=1)
    record_builds(bare_wh, (date(2024, 2, 1), date(2024, 3, 1)), later, ["monthly"], "FAILED")
    run = _answer(bare_wh)
    assert run.answered_from == "events"
    assert "latest build of monthly_metrics for monthly 2024-02-01 failed" in (
        run.fallback_reason or ""
    )


def late_row(day: date, ingested_at: datetime, name: str) -> dict[str, Any]:
    """An asset click at 05:00 on `day`, in the source table's columns."""
    occurred = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=5)
    return {
        "event_id": f"late-{name}",
        "occurred_at": occurred,
        "event_type": "click",
        "actor_id": "u1",
        "entity_type": "asset",
        "entity_id": "a1",
        "revenue_cents": None,
        "properties": None,
        "ingested_at": ingested_at,
    }


def _late_event(wh: Warehouse, day: date, ingested_at: datetime) -> None:
    insert_rows(wh, "events", [late_row(day, ingested_at, str(day))], wh.source_schema)


def test_late_events_in_the_window_read_the_events(bare_wh: Warehouse) -> None:
    record_builds(bare_wh, (FIRST, LAST), BUILT_AT)
    _late_event(bare_wh, date(2024, 3, 10), BUILT_AT + timedelta(days=1))  # after the window
    assert _answer(bare_wh).fallback_reason is None
    _late_event(bare_wh, date(2024, 2, 29), BUILT_AT + timedelta(days=1))
    run = _answer(bare_wh)
    assert run.answered_from == "events"
    assert "events of 2024-02-29 arrived after the rollups were built" in (
        run.fallback_reason or ""
    )
    # Rebuilt after it arrived (the late-data sensor's re-run): the rollups answer again.
    record_builds(bare_wh, (FIRST, LAST), BUILT_AT + timedelta(days=2))
    assert _answer(bare_wh).answered_from == SOURCES["all"]


def test_a_calculation_says_why_it_read_the_events(bare_wh: Warehouse) -> None:
    service = CustomMetricService(bare_wh, OWNER)
    stored = service.create_definition(ASSET_BY_EVENT)
    result = service.calculate_metric(stored.definition_id, *WINDOW)
    assert result.answered_from == "events"
    assert result.fallback_reason is not None and "not built" in result.fallback_reason
    record_builds(bare_wh, (FIRST, LAST), BUILT_AT)
    again = service.calculate_metric(stored.definition_id, *WINDOW)
    assert again.answered_from == SOURCES["all"] and again.fallback_reason is None
    assert {(tuple(v.dimensions.values()), v.value) for v in again.values} == {
        (tuple(v.dimensions.values()), v.value) for v in result.values
    }
