"""`/v1/metrics/...`: the daily, weekly and monthly rollups and a month's weekly breakdown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from starlette.responses import Response

from serving.http.auth import CallerDep, context_of
from serving.http.problems import Problem
from serving.http.responses import JSONResponse, csv_response, wants_csv
from serving.http.rollups import RollupQuery, RowFilter, freshness
from warehouse.calendar import Grain

router = APIRouter(prefix="/v1/metrics", tags=["rollups"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
FRESHNESS_HEADER = "Metrics-Latest-Partition"

Dimension = Annotated[
    str | None, Query(min_length=1, max_length=200, description="exact value, or * for all")
]


def _filters(
    entity_type: str | None,
    entity_id: str | None,
    event_type: str | None,
    start: date | None,
    end: date | None,
    month: date | None = None,
) -> RowFilter:
    if start is not None and end is not None and start >= end:
        raise Problem(422, f"start {start} must be before end {end} (half-open)", field="start")
    return RowFilter(entity_type, entity_id, event_type, start, end, month)


def _answer(
    request: Request,
    query: RollupQuery,
    grain: Grain,
    limit: int,
    cursor: str | None,
    accept: str | None,
) -> Response:
    context = context_of(request)
    if wants_csv(accept):
        with context.pool.connection() as wh:
            fresh = freshness(wh, grain, query.mart.name)
            query.check_cursor(cursor)  # a bad cursor is a 422 before streaming starts

        def rows() -> Iterator[dict[str, Any]]:
            with context.pool.connection() as wh:
                yield from query.stream(wh, cursor)

        headers = {FRESHNESS_HEADER: fresh["latest_partition"] or ""}
        return csv_response(query.columns, rows(), headers)
    with context.pool.connection() as wh:
        data, next_cursor = query.page(wh, cursor, limit)
        fresh = freshness(wh, grain, query.mart.name)
    return JSONResponse(
        {"data": data, "next_cursor": next_cursor, "freshness": fresh},
        headers={FRESHNESS_HEADER: fresh["latest_partition"] or ""},
    )


@router.get(
    "/{grain}",
    summary="Rollup rows, keyset-paginated; Accept: text/csv streams every row",
    responses={200: {"content": {"text/csv": {}}}},
)
def rollup(
    request: Request,
    caller: CallerDep,
    grain: Literal["daily", "weekly", "monthly"],
    entity_type: Dimension = None,
    entity_id: Dimension = None,
    event_type: Dimension = None,
    start: Annotated[date | None, Query(description="first period start (inclusive)")] = None,
    end: Annotated[date | None, Query(description="period starts before this day")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    g = Grain.parse(grain)
    query = RollupQuery(
        f"{g.adjective}_metrics", _filters(entity_type, entity_id, event_type, start, end)
    )
    return _answer(request, query, g, limit, cursor, accept)


@router.get(
    "/monthly/{month}/weeks",
    summary="A month's weekly breakdown (only the days of each week inside the month)",
    responses={200: {"content": {"text/csv": {}}}},
)
def monthly_weeks(
    request: Request,
    caller: CallerDep,
    month: Annotated[str, Path(description="YYYY-MM")],
    entity_type: Dimension = None,
    entity_id: Dimension = None,
    event_type: Dimension = None,
    start: Annotated[date | None, Query(description="first week start (inclusive)")] = None,
    end: Annotated[date | None, Query(description="week starts before this day")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    match = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise Problem(422, f"month: write it YYYY-MM (e.g. 2025-09), not {month!r}", field="month")
    first = date(int(match.group(1)), int(match.group(2)), 1)
    query = RollupQuery(
        "monthly_weekly_breakdown",
        _filters(entity_type, entity_id, event_type, start, end, first),
        range_column="week_start",
    )
    return _answer(request, query, Grain.MONTH, limit, cursor, accept)
