"""The FastAPI application of `metrics serve`: routers, error handlers, shared context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
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

    app.include_router(routes_metrics.router)
    app.include_router(routes_dashboards.router)
    app.include_router(routes_custom.router)
    app.include_router(routes_realtime.router)
    app.include_router(routes_admin.router)
    app.include_router(monitoring.router)
    app.include_router(page.router)
    app.mount("/static", page.static_files(), name="static")
    return app
