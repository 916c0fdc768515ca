"""The application's route table: every path operation of the route modules is a route of the app
itself (matched directly, not through an included router), under its module's path, tags and
name, and the OpenAPI document lists each one."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount

from serving.http import ServerSettings
from serving.http.app import add_routes, create_app
from serving.http.routes_dashboards import router as dashboards_router
from warehouse import WarehouseConfig


def _app(tmp_path: Path) -> FastAPI:
    config = WarehouseConfig(target="duckdb", duckdb_path=str(tmp_path / "wh.duckdb"))
    return create_app(ServerSettings(warehouse=config))


def test_path_operations_are_routes_of_the_app(tmp_path: Path) -> None:
    app = _app(tmp_path)
    kinds = {type(route) for route in app.routes}
    assert APIRoute in kinds and Mount in kinds
    assert all(
        type(route).__module__.startswith("starlette.") or type(route) is APIRoute
        for route in app.routes
    ), kinds
    routes = {
        (r.path, m): r for r in app.routes if isinstance(r, APIRoute) for m in r.methods or ()
    }
    dashboard = routes[("/v1/dashboards/{date_range}", "GET")]
    assert dashboard.tags == ["dashboards"] and dashboard.name == "dashboard"
    assert dashboard.dependency_overrides_provider is app
    assert ("/", "GET") in routes and not routes[("/", "GET")].include_in_schema
    schema = app.openapi()
    documented = {(path, method.upper()) for path, ops in schema["paths"].items() for method in ops}
    in_schema = {key for key, route in routes.items() if route.include_in_schema}
    assert documented == in_schema
    assert schema["paths"]["/v1/dashboards/{date_range}"]["get"]["tags"] == ["dashboards"]
    for route in dashboards_router.routes:  # the module's own router is left as it was
        assert isinstance(route, APIRoute) and route.path.startswith("/v1/dashboards/")


def test_add_routes_takes_path_operations_only(tmp_path: Path) -> None:
    router = APIRouter()
    router.mount("/files", _app(tmp_path))
    with pytest.raises(TypeError, match="only path operations"):
        add_routes(FastAPI(), router)
