"""FUNNEL: step counts and conversions on every path equal a plain-Python walk through each
actor's events, on every warehouse: generated events and hand-made edge cases (no step 1,
steps out of order, events exactly at the window's edge, NULL actors, entries before the
range, later steps after it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from custom_metrics import CustomMetricService, Principal, compile_metric
from tests.custom_metrics.journeys import funnel_reference
from tests.custom_metrics.support import (
    connection_params,
    event,
    own_warehouse,
    percent,
    service_paths,
    utc,
)
from tests.targets import EVERY_WAREHOUSE, on_every_warehouse
from warehouse import Warehouse

Row = Mapping[str, Any]
OWNER = Principal("funnel", "growth", "acme")


def is_type(name: str) -> Callable[[Row], bool]:
    return lambda r: r["event_type"] == name


def funnel(steps: list[dict[str, Any]], window: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "funnel",
        "metric_type": "FUNNEL",
        "data_source": "events",
        "steps": steps,
        "conversion_window_days": window,
        **extra,
    }


def _rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in rows]


def _check_every_path(
    wh: Warehouse,
    definition: dict[str, Any],
    start: date | datetime,
    end: date | datetime,
    expected: list[tuple[int, Any, Any, int]],
    service_too: bool = True,
) -> None:
    compiled = compile_metric(definition, wh.dialect, start, end, schema=wh.schema)
    assert compiled.columns == (
        "step",
        "conversion_from_previous_pct",
        "conversion_from_first_pct",
        "value",
    )
    assert _rows(wh.query(compiled.sql, compiled.params)) == expected
    if not service_too:
        return
    service = CustomMetricService(wh, OWNER)
    assert _rows(service.test_metric_definition(definition, start, end).rows) == expected
    if isinstance(start, datetime):
        return  # calculate takes whole days
    stored = service.create_definition(definition)
    result = service.calculate_metric(stored.definition_id, start, end)
    calculated = [
        (
            v.dimensions["step"],
            v.extra["conversion_from_previous_pct"],
            v.extra["conversion_from_first_pct"],
            v.value,
        )
        for v in result.values
    ]
    assert calculated == expected
    assert [v.value for v in service.values(stored.definition_id)] == [e[-1] for e in expected]


# ---- generated events ----------------------------------------------------------------------

VIEW_CLICK_BUY = [{"event_type": "page_view"}, {"event_type": "click"}, {"event_type": "purchase"}]


@on_every_warehouse("wh")
@pytest.mark.parametrize(
    ("definition", "steps", "who", "keep"),
    [
        (funnel(VIEW_CLICK_BUY, 7), ["page_view", "click", "purchase"], "actor_id", None),
        (funnel(VIEW_CLICK_BUY, 1), ["page_view", "click", "purchase"], "actor_id", None),
        (
            funnel(VIEW_CLICK_BUY, 3, counted_by="entity_id"),
            ["page_view", "click", "purchase"],
            "entity_id",
            None,
        ),
        (
            funnel(
                [{"event_type": "click"}, {"event_type": ["purchase", "license_renewal"]}],
                14,
                filters={"entity_type": "license"},
            ),
            ["click", ("purchase", "license_renewal")],
            "actor_id",
            lambda r: r["entity_type"] == "license",
        ),
        (
            funnel(
                [
                    {"event_type": "page_view"},
                    {"event_type": "page_view"},
                    {"event_type": "asset_used"},
                    {"event_type": "click"},
                ],
                30,
                where="revenue_cents is null or revenue_cents > 10",
            ),
            ["page_view", "page_view", "asset_used", "click"],
            "actor_id",
            lambda r: r["revenue_cents"] is None or r["revenue_cents"] > 10,
        ),
    ],
    ids=["view-click-buy-7d", "one-day", "by-entity", "filtered-list-step", "repeated-step-where"],
)
def test_generated_events_match_python(
    request: pytest.FixtureRequest,
    wh: Warehouse,
    events: list[dict[str, Any]],
    definition: dict[str, Any],
    steps: list[Any],
    who: str,
    keep: Callable[[Row], bool] | None,
) -> None:
    start, end = date(2025, 1, 5), date(2025, 2, 5)
    predicates = [
        (lambda r, s=s: r["event_type"] in s) if isinstance(s, tuple) else is_type(s) for s in steps
    ]
    expected = funnel_reference(
        events,
        predicates,
        definition["conversion_window_days"],
        utc(start),
        utc(end),
        who,
        keep or (lambda r: True),
    )
    assert expected[0][-1] > 0  # someone really enters
    service_too = service_paths(request, wh, "filtered-list-step")
    _check_every_path(wh, definition, start, end, expected, service_too=service_too)


@on_every_warehouse("wh")
def test_without_a_period_everyone_can_enter(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    definition = funnel(VIEW_CLICK_BUY, 7)
    compiled = compile_metric(definition, wh.dialect, schema=wh.schema)
    expected = funnel_reference(
        events, [is_type("page_view"), is_type("click"), is_type("purchase")], 7, None, None
    )
    assert _rows(wh.query(compiled.sql, compiled.params)) == expected


# ---- hand-made edge cases ------------------------------------------------------------------

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def _edge_events() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(at: datetime, kind: str, actor: str | None) -> None:
        rows.append(event(len(rows), at, kind, actor, entity_id=f"n{len(rows) % 3}"))

    # full conversion, in order
    add(T0, "view", "full")
    add(T0 + DAY, "checkout", "full")
    add(T0 + 2 * DAY, "purchase", "full")
    # no step 1 at all
    add(T0, "checkout", "no-view")
    add(T0 + DAY, "purchase", "no-view")
    # steps out of order: purchase and checkout before the view
    add(T0, "purchase", "backwards")
    add(T0 + SECOND, "checkout", "backwards")
    add(T0 + DAY, "view", "backwards")
    # checkout exactly at the window's edge (7 days after entering): outside
    add(T0, "view", "edge-out")
    add(T0 + 7 * DAY, "checkout", "edge-out")
    # one second inside the edge: inside; its purchase exactly at the edge: outside
    add(T0, "view", "edge-in")
    add(T0 + 7 * DAY - SECOND, "checkout", "edge-in")
    add(T0 + 7 * DAY, "purchase", "edge-in")
    # same moment for view and checkout: reached (at or after)
    add(T0 + 3 * DAY, "view", "same-time")
    add(T0 + 3 * DAY, "checkout", "same-time")
    # NULL actors are never counted, whatever they do
    add(T0, "view", None)
    add(T0 + DAY, "checkout", None)
    add(T0 + 2 * DAY, "purchase", None)
    # entered before the range: only the view inside the range counts as the entry
    add(T0 - 10 * DAY, "view", "early")
    add(T0 - 9 * DAY, "checkout", "early")
    add(T0 + 4 * DAY, "view", "early")
    add(T0 + 5 * DAY, "purchase", "early")  # no checkout after the entry: stops at step 1
    # entered on the range's last day, converts after the range ends (inside the window)
    add(datetime(2025, 3, 31, 23, 0, tzinfo=UTC), "view", "late")
    add(datetime(2025, 4, 2, tzinfo=UTC), "checkout", "late")
    add(datetime(2025, 4, 3, tzinfo=UTC), "purchase", "late")
    # a second view later does not restart the window
    add(T0, "view", "again")
    add(T0 + 8 * DAY, "view", "again")
    add(T0 + 9 * DAY, "checkout", "again")
    # purchase before checkout but after view: must come after checkout to count
    add(T0, "view", "skip")
    add(T0 + DAY, "purchase", "skip")
    add(T0 + 2 * DAY, "checkout", "skip")
    return rows


EDGE_STEPS = [{"event_type": "view"}, {"event_type": "checkout"}, {"event_type": "purchase"}]
EDGE_START, EDGE_END = date(2025, 3, 1), date(2025, 4, 1)


@pytest.fixture(params=EVERY_WAREHOUSE, scope="module")
def edge_wh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    params = connection_params(request, request.param)
    folder = tmp_path_factory.mktemp("funnel")
    with own_warehouse(request.param, folder, params, _edge_events()) as wh:
        yield wh


def test_edge_cases_match_python_and_the_hand_count(edge_wh: Warehouse) -> None:
    definition = funnel(EDGE_STEPS, 7)
    expected = funnel_reference(
        _edge_events(),
        [is_type("view"), is_type("checkout"), is_type("purchase")],
        7,
        utc(EDGE_START),
        utc(EDGE_END),
    )
    # entered: full, edge-out, edge-in, same-time, early, late, again, skip, backwards (9);
    # checkout: full, edge-in, same-time, late, skip (5); purchase: full, late (2)
    assert [e[-1] for e in expected] == [9, 5, 2]
    assert expected[1][1:3] == (percent(5, 9), percent(5, 9))
    _check_every_path(edge_wh, definition, EDGE_START, EDGE_END, expected)


def test_an_entry_at_the_range_edges(edge_wh: Warehouse) -> None:
    """A range ending exactly at an entry leaves it out; starting exactly there takes it."""
    definition = funnel(EDGE_STEPS, 7)
    steps = [is_type("view"), is_type("checkout"), is_type("purchase")]
    for lo, hi in ((T0 - DAY, T0), (T0, T0 + DAY)):
        expected = funnel_reference(_edge_events(), steps, 7, lo, hi)
        service_too = edge_wh.dialect != "spark"  # Spark: the hand count's test has them
        _check_every_path(edge_wh, definition, lo, hi, expected, service_too=service_too)
    empty = compile_metric(definition, edge_wh.dialect, T0 - DAY, T0, schema=edge_wh.schema)
    rows = edge_wh.query(empty.sql, empty.params)
    assert [tuple(r) for r in rows] == [(1, None, None, 0), (2, None, None, 0), (3, None, None, 0)]


def test_conversions_round_half_away_from_zero(edge_wh: Warehouse) -> None:
    """9 entered, 5 checked out: 55.555... -> 55.56; 2 of 5 bought: 40.00; 2 of 9: 22.22."""
    compiled = compile_metric(
        funnel(EDGE_STEPS, 7), edge_wh.dialect, EDGE_START, EDGE_END, schema=edge_wh.schema
    )
    from decimal import Decimal

    rows = [tuple(r) for r in edge_wh.query(compiled.sql, compiled.params)]
    assert rows[1][1:3] == (Decimal("55.56"), Decimal("55.56"))
    assert rows[2][1:3] == (Decimal("40.00"), Decimal("22.22"))


@on_every_warehouse("wh")
def test_cost_is_classed_by_what_the_funnel_scans(wh: Warehouse) -> None:
    """EXPLAIN prices the funnel's query like any other: a policy whose LOW class ends below
    that estimate classes it MEDIUM, one whose LOW class ends above it classes it LOW."""
    from custom_metrics import CostClass, ExecutionPolicy

    definition = funnel(VIEW_CLICK_BUY, 7)
    estimate = CustomMetricService(wh, OWNER).estimate_cost(
        definition, date(2025, 1, 5), date(2025, 2, 5)
    )
    units = {"postgres": "cost", "duckdb": "rows", "spark": "bytes"}
    assert estimate.estimate > 0 and estimate.unit == units[wh.dialect]
    for low_ends, expected in (
        (estimate.estimate / 2, CostClass.MEDIUM),
        (estimate.estimate * 2, CostClass.LOW),
    ):
        limits = (low_ends, estimate.estimate * 4)
        policy = ExecutionPolicy(
            postgres_cost_limits=limits, duckdb_rows_limits=limits, spark_bytes_limits=limits
        )
        classed = CustomMetricService(wh, OWNER, policy=policy).estimate_cost(
            definition, date(2025, 1, 5), date(2025, 2, 5)
        )
        assert classed.cost_class is expected
