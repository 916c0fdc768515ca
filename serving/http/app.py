"""The FastAPI application of `metrics serve`: routers, error handlers, shared context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.responses import Response

from serving.http import (
    monitoring,
    page,
    problems,
    routes_admin,
    routes_custom,
    routes_dashboards,
    routes_metrics,
    routes_realtime,
)
from serving.http.context import ServerContext, ServerSettings

DESCRIPTION = (
    "Rollups, dashboards, custom metrics and realtime metrics over HTTP. "
    "Authenticate with `Authorization: Bearer <token>` (`metrics tokens create`). "
    "Errors are application/problem+json."
)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add the path operations of ``router`` to ``app`` itself, as `app.get` would have.

    FastAPI's ``include_router`` keeps the router as a node of the app's route tree that every
    request walks a second time to find its route (under 32 connections about 15% of a cached
    dashboard's server time went to that walk); routes of the app itself are matched directly.
    Every route keeps its path, tags, summary, dependencies and responses, so the OpenAPI
    document is the same.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only path operations can be added to the app directly")
        app.router.add_api_route(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
        )


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """A new application; `settings` default to the environment's."""
    context = ServerContext(settings or ServerSettings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(title="metrics", description=DESCRIPTION, version="1", lifespan=lifespan)
    app.state.context = context
    problems.install(app)

    @app.get("/healthz", tags=["monitoring"], summary="Liveness (no token needed)")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    for router in (
        routes_metrics.router,
        routes_dashboards.router,
        routes_custom.router,
        routes_realtime.router,
        routes_admin.router,
        monitoring.router,
        page.router,
    ):
        add_routes(app, router)
    app.mount("/static", page.static_files(), name="static")
    return app
