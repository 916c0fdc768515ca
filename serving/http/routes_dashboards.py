"""`/v1/dashboards/{range}`: the cached dashboard bundle of the reader, keyed per caller scope.

The cache key and the user tag carry the caller's scope (user, team, organization, admin), so
one caller's cached bundle is never served to another, whatever the bundle holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Annotated, Any, Final, Literal, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serving.http.auth import context_of, require_caller
from serving.http.connections import ConnectionPool
from serving.http.context import ServerContext
from serving.http.problems import Problem
from serving.reader import MetricsReader
from warehouse import Warehouse

router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])


class PooledReader(MetricsReader):
    """The reader on the server's connection pool (one DuckDB file handle per process)."""

    def __init__(self, context: ServerContext) -> None:
        super().__init__(context.cache, config=context.settings.warehouse)
        self._pool: ConnectionPool = context.pool

    @contextmanager
    def _connection(self) -> Iterator[Warehouse]:
        with self._pool.connection() as wh:
            yield wh


def reader_of(request: Request) -> MetricsReader:
    """The application's reader (made once: it memoizes dashboard plans)."""
    reader: MetricsReader | None = getattr(request.app.state, "dashboard_reader", None)
    if reader is None:
        reader = request.app.state.dashboard_reader = PooledReader(context_of(request))
    return reader


Level = Annotated[str, Field(min_length=1, max_length=200, description="a value, or * for all")]


class DashboardLevel(BaseModel):
    """The level of a dashboard: one entity and event type, or ``*`` for all of them."""

    entity_type: Level = "*"
    entity_id: Level = "*"
    event_type: Level = "*"


DateRange = Literal["7d", "30d", "90d", "12m"]
_DATE_RANGE: Final = TypeAdapter(DateRange)
T = TypeVar("T")


def _validated(validate: Callable[[Any], T], value: Any, where: tuple[str, ...]) -> T:
    """``validate(value)``, its errors raised as FastAPI's 422 (a problem naming the field)."""
    try:
        return validate(value)
    except ValidationError as error:
        errors = [{**e, "loc": (*where, *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors) from None


# The route reads its parameters itself (below), so OpenAPI learns them from here: the same
# entries FastAPI derives from a `date_range: DateRange` path parameter and an
# `Annotated[DashboardLevel, Query()]` query model.
_OPENAPI: Final[dict[str, Any]] = {
    "parameters": [
        {
            "in": "path",
            "name": "date_range",
            "required": True,
            "schema": {**_DATE_RANGE.json_schema(), "title": "Date Range"},
        },
        *(
            {
                "description": schema["description"],
                "in": "query",
                "name": name,
                "required": False,
                "schema": schema,
            }
            for name, schema in DashboardLevel.model_json_schema()["properties"].items()
        ),
    ],
    "responses": {
        "422": {
            "description": "Validation Error",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        }
    },
}


@router.get(
    "/{date_range}",
    summary="The dashboard bundle for a level, cached per caller",
    openapi_extra=_OPENAPI,
)
async def dashboard(request: Request) -> Response:
    """A fresh cached bundle is served from the event loop; anything else (a miss, a stale
    entry, Redis down) goes through the blocking get-or-compute in a worker thread."""
    # FastAPI's parameter and dependency solving cost a cached hit about as much as everything
    # else the route does, so the route checks in the same order itself: the caller (401), the
    # path, the query (422, with pydantic's messages).
    caller = await require_caller(request)
    date_range = _validated(
        _DATE_RANGE.validate_python, request.path_params["date_range"], ("path", "date_range")
    )
    # The query string read as Starlette's QueryParams reads it (the last of a repeated name
    # counts), without the multi-dict it would build and this route would not use.
    query = dict(parse_qsl(request.scope["query_string"].decode("latin-1"), keep_blank_values=True))
    level = _validated(DashboardLevel.model_validate, query, ("query",))
    reader = reader_of(request)
    args = (caller.scope, level.entity_type, level.entity_id, date_range)
    try:
        body = await reader.cached_dashboard_json(*args, event_type=level.event_type)
        if body is None:
            body = await run_in_threadpool(
                partial(reader.get_dashboard_json, *args, event_type=level.event_type)
            )
    except ValueError as error:
        field = next(
            (f for f in ("entity_type", "entity_id", "event_type") if str(error).startswith(f)),
            "entity_id",
        )
        raise Problem(422, str(error), field=field) from None
    return Response(body, media_type="application/json")
