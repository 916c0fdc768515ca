"""RETENTION: cohort sizes, retained counts and rates on every path equal a plain-Python count by
calendar dates, on every warehouse: generated events, and hand-made edge cases (cohorts at year
and month boundaries, empty cohorts, first cohort events before the range, NULL actors, weeks
starting on another day)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from custom_metrics import CustomMetricService, MetricValidationError, Principal, compile_metric
from tests.custom_metrics.journeys import retention_reference
from tests.custom_metrics.support import (
    connection_params,
    event,
    own_warehouse,
    percent,
    service_paths,
)
from tests.targets import EVERY_WAREHOUSE, on_every_warehouse
from warehouse import Warehouse

Row = Mapping[str, Any]
OWNER = Principal("retention", "growth", "acme")


def retention(
    cohort: dict[str, Any], back: dict[str, Any], grain: str, periods: int, **extra: Any
) -> dict[str, Any]:
    return {
        "name": "retention",
        "metric_type": "RETENTION",
        "data_source": "events",
        "cohort_event": cohort,
        "return_event": back,
        "period": grain,
        "periods": periods,
        **extra,
    }


def _check_every_path(
    wh: Warehouse,
    definition: dict[str, Any],
    start: date,
    end: date,
    expected: list[tuple[Any, ...]],
    week_start: int = 0,
    service_too: bool = True,
) -> None:
    compiled = compile_metric(
        definition, wh.dialect, start, end, schema=wh.schema, week_start_index=week_start
    )
    assert compiled.columns == (
        "period_start",
        "period_end",
        "k",
        "cohort_size",
        "retention_pct",
        "value",
    )
    assert [tuple(r) for r in wh.query(compiled.sql, compiled.params)] == expected
    if week_start != wh.config.week_start_index or not service_too:
        return  # the service uses the warehouse's configured week start
    service = CustomMetricService(wh, OWNER)
    assert [
        tuple(r) for r in service.test_metric_definition(definition, start, end).rows
    ] == expected
    stored = service.create_definition(definition)
    result = service.calculate_metric(stored.definition_id, start, end)
    calculated = [
        (
            v.period_start,
            v.period_end,
            v.dimensions["k"],
            v.extra["cohort_size"],
            v.extra["retention_pct"],
            v.value,
        )
        for v in result.values
    ]
    assert calculated == expected
    kept = sorted(
        (v.period_start, v.dimensions["k"], v.value) for v in service.values(stored.definition_id)
    )
    assert kept == sorted((e[0], e[2], e[-1]) for e in expected)


def is_type(*names: str) -> Callable[[Row], bool]:
    return lambda r: r["event_type"] in names


# ---- generated events ------------------------------------------------------------------------


@on_every_warehouse("wh")
@pytest.mark.parametrize(
    ("definition", "cohort", "back", "start", "end", "who", "keep"),
    [
        (
            retention({"event_type": "page_view"}, {"event_type": "click"}, "week", 4),
            is_type("page_view"),
            is_type("click"),
            date(2025, 1, 6),
            date(2025, 2, 3),
            "actor_id",
            None,
        ),
        (
            retention({"event_type": "click"}, {"event_type": ["purchase", "click"]}, "day", 6),
            is_type("click"),
            is_type("purchase", "click"),
            date(2025, 1, 10),
            date(2025, 1, 20),
            "actor_id",
            None,
        ),
        (
            retention(
                {"event_type": "page_view"},
                {"event_type": "asset_used"},
                "month",
                1,
                counted_by="entity_id",
                filters={"entity_type": "asset"},
            ),
            is_type("page_view"),
            is_type("asset_used"),
            date(2025, 1, 1),
            date(2025, 3, 1),
            "entity_id",
            lambda r: r["entity_type"] == "asset",
        ),
        (
            # a range that starts mid-week: the first reported cohort is the next week
            retention({"event_type": "page_view"}, {"event_type": "page_view"}, "week", 2),
            is_type("page_view"),
            is_type("page_view"),
            date(2025, 1, 8),
            date(2025, 2, 12),
            "actor_id",
            None,
        ),
    ],
    ids=["weekly-view-click", "daily-click-buy", "monthly-by-entity", "mid-week-range"],
)
def test_generated_events_match_python(
    request: pytest.FixtureRequest,
    wh: Warehouse,
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    cohort: Callable[[Row], bool],
    back: Callable[[Row], bool],
    start: date,
    end: date,
    who: str,
    keep: Callable[[Row], bool] | None,
) -> None:
    expected = retention_reference(
        events,
        cohort,
        back,
        definition["period"],
        definition["periods"],
        start,
        end,
        who=who,
        keep=keep or (lambda r: True),
    )
    assert any(e[3] > 0 and e[2] > 0 and e[-1] > 0 for e in expected)  # someone comes back
    service_too = service_paths(request, wh, "weekly-view-click")
    _check_every_path(wh, definition, start, end, expected, service_too=service_too)


# ---- hand-made edge cases ------------------------------------------------------------------


def _edge_events() -> list[dict[str, Any]]:
    """Actors around the 2025/2026 year end and month ends, some with NULL actors, gaps."""
    rng = random.Random(17)
    rows: list[dict[str, Any]] = []

    def add(day: date, kind: str, actor: str | None, hour: int = 12) -> None:
        at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        rows.append(event(len(rows), at, kind, actor))

    # first signups right at boundaries: the last day of a year, the first of the next
    add(date(2025, 12, 31), "signup", "eve", hour=23)
    add(date(2026, 1, 1), "signup", "newyear", hour=0)
    add(date(2026, 1, 1), "visit", "eve", hour=0)  # eve comes back on Jan 1 (next month)
    add(date(2026, 1, 31), "signup", "month-end", hour=23)
    add(date(2026, 2, 1), "visit", "month-end", hour=0)
    # signed up long before the range: never in a reported cohort, even when signing up again
    add(date(2025, 6, 1), "signup", "veteran")
    add(date(2026, 1, 5), "signup", "veteran")
    add(date(2026, 1, 6), "visit", "veteran")
    # NULL actors sign up and visit: never counted
    for day in (date(2025, 12, 29), date(2026, 1, 5), date(2026, 1, 12)):
        add(day, "signup", None)
        add(day + timedelta(days=1), "visit", None)
    # a crowd with random signups and visits from mid-December to March
    for index in range(60):
        actor = f"u{index}"
        signup = date(2025, 12, 15) + timedelta(days=rng.randrange(0, 50))
        if rng.random() < 0.15:
            continue  # and some have no signup at all, only visits
        add(signup, "signup", actor, hour=rng.randrange(24))
        for _ in range(rng.randrange(0, 6)):
            add(signup + timedelta(days=rng.randrange(0, 70)), "visit", actor, rng.randrange(24))
    for index in range(5):
        add(date(2026, 1, 20) + timedelta(days=index), "visit", f"nosignup{index}")
    return rows


@pytest.fixture(params=EVERY_WAREHOUSE, scope="module")
def edge_wh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    params = connection_params(request, request.param)
    folder = tmp_path_factory.mktemp("retention")
    with own_warehouse(request.param, folder, params, _edge_events()) as wh:
        yield wh


SIGNUP, VISIT = {"event_type": "signup"}, {"event_type": "visit"}


@pytest.mark.parametrize(
    ("grain", "periods", "start", "end", "week_start"),
    [
        ("week", 8, date(2025, 12, 22), date(2026, 2, 2), 0),  # weeks across the year end
        ("week", 3, date(2025, 12, 21), date(2026, 1, 25), 6),  # weeks from Sunday
        ("month", 2, date(2025, 12, 1), date(2026, 3, 1), 0),  # Dec -> Jan -> Feb
        ("day", 3, date(2025, 12, 30), date(2026, 1, 3), 0),  # days across the year end
        ("week", 1, date(2026, 3, 2), date(2026, 3, 16), 0),  # empty cohorts after signups end
    ],
    ids=["weeks-year-end", "weeks-from-sunday", "months", "days-year-end", "empty-cohorts"],
)
def test_edge_cases_match_python(
    request: pytest.FixtureRequest,
    edge_wh: Warehouse,
    grain: str,
    periods: int,
    start: date,
    end: date,
    week_start: int,
) -> None:
    definition = retention(SIGNUP, VISIT, grain, periods)
    expected = retention_reference(
        _edge_events(),
        is_type("signup"),
        is_type("visit"),
        grain,
        periods,
        start,
        end,
        week_start,
    )
    service_too = service_paths(request, edge_wh, "weeks-year-end")
    _check_every_path(edge_wh, definition, start, end, expected, week_start, service_too)


def test_hand_counted_cohorts_at_the_year_end(edge_wh: Warehouse) -> None:
    """Monthly: eve is December's cohort and back in January (k = 1); newyear is January's."""
    only = [
        e
        for e in _edge_events()
        if e["actor_id"] in ("eve", "newyear", "month-end", "veteran", None)
    ]
    got = retention_reference(
        only, is_type("signup"), is_type("visit"), "month", 1, date(2025, 12, 1), date(2026, 2, 1)
    )
    assert got == [
        (date(2025, 12, 1), date(2026, 1, 1), 0, 1, percent(0, 1), 0),
        (date(2025, 12, 1), date(2026, 1, 1), 1, 1, percent(1, 1), 1),
        (date(2026, 1, 1), date(2026, 2, 1), 0, 2, percent(0, 2), 0),
        (date(2026, 1, 1), date(2026, 2, 1), 1, 2, percent(1, 2), 1),
    ]
    compiled = compile_metric(
        retention(
            SIGNUP,
            VISIT,
            "month",
            1,
            where="actor_id is null or actor_id in ('eve', 'newyear', 'month-end', 'veteran')",
        ),
        edge_wh.dialect,
        date(2025, 12, 1),
        date(2026, 2, 1),
        schema=edge_wh.schema,
    )
    assert [tuple(r) for r in edge_wh.query(compiled.sql, compiled.params)] == got


def test_empty_cohort_rate_is_null(edge_wh: Warehouse) -> None:
    compiled = compile_metric(
        retention(SIGNUP, VISIT, "week", 1),
        edge_wh.dialect,
        date(2026, 3, 2),
        date(2026, 3, 9),
        schema=edge_wh.schema,
        week_start_index=0,
    )
    rows = [tuple(r) for r in edge_wh.query(compiled.sql, compiled.params)]
    assert rows == [
        (date(2026, 3, 2), date(2026, 3, 9), 0, 0, None, 0),
        (date(2026, 3, 2), date(2026, 3, 9), 1, 0, None, 0),
    ]


def test_a_range_without_a_period_start_is_refused() -> None:
    definition = retention(SIGNUP, VISIT, "month", 1)
    with pytest.raises(MetricValidationError) as caught:
        compile_metric(definition, "duckdb", date(2026, 1, 2), date(2026, 1, 30))
    assert caught.value.field == "start" and "month" in caught.value.reason
    with pytest.raises(MetricValidationError) as caught:
        compile_metric(definition, "postgres")
    assert caught.value.field == "start"


@on_every_warehouse("wh")
def test_cost_is_classed_by_what_the_retention_scans(wh: Warehouse) -> None:
    """The retention query's EXPLAIN estimate grows with the events it reads."""
    definition = retention({"event_type": "page_view"}, {"event_type": "click"}, "week", 4)
    service = CustomMetricService(wh, OWNER)
    estimate = service.estimate_cost(definition, date(2025, 1, 6), date(2025, 2, 3))
    assert estimate.estimate > 0
    counted = {
        "name": "c",
        "metric_type": "COUNT",
        "data_source": "events",
        "calculation_formula": "event_id",
    }
    scan = service.estimate_cost(counted, date(2025, 1, 6), date(2025, 2, 3))
    assert estimate.estimate >= scan.estimate  # at least the scan of the events
