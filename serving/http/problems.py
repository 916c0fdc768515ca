"""Errors as `application/problem+json` (RFC 9457): one exception type and the app's handlers.

Every error the API answers has the same shape: ``type``, ``title``, ``status``, ``detail``
and, for bad input, ``field`` naming the offending parameter or definition field.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from custom_metrics import (
    MetricExecutionError,
    MetricNotFoundError,
    MetricPermissionError,
    MetricTimeoutError,
    MetricValidationError,
)
from warehouse import WarehouseBusyError

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("serving.http")


class Problem(Exception):
    """An error answer: HTTP status, a one-line detail and optional extra members."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """The problem+json response for `status` with `detail`."""
    phrase = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def unauthorized(detail: str) -> Problem:
    """401 with the challenge a Bearer client expects."""
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


def _field(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    """Answer every error of `app` as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, error: Problem) -> Response:
        extra = dict(error.extra)
        headers = extra.pop("headers", None)
        return problem_response(error.status, error.detail, headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        return problem_response(422, f"{field}: {first.get('msg')}", field=field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> Response:
        return problem_response(error.status_code, str(error.detail), dict(error.headers or {}))

    @app.exception_handler(MetricValidationError)
    async def _metric_invalid(_: Request, error: MetricValidationError) -> Response:
        return problem_response(422, str(error), field=error.field)

    @app.exception_handler(MetricNotFoundError)
    async def _metric_missing(_: Request, error: MetricNotFoundError) -> Response:
        return problem_response(404, str(error).strip("'\""))

    @app.exception_handler(MetricPermissionError)
    async def _metric_forbidden(_: Request, error: MetricPermissionError) -> Response:
        return problem_response(403, str(error))

    @app.exception_handler(MetricTimeoutError)
    async def _metric_timeout(_: Request, error: MetricTimeoutError) -> Response:
        return problem_response(504, str(error))

    @app.exception_handler(MetricExecutionError)
    async def _metric_failed(_: Request, error: MetricExecutionError) -> Response:
        return problem_response(500, str(error))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> Response:
        logger.exception("unexpected error", exc_info=error)
        return problem_response(500, f"internal error ({type(error).__name__}); see the server log")

    @app.exception_handler(WarehouseBusyError)
    async def _busy(_: Request, error: WarehouseBusyError) -> Response:
        return problem_response(503, str(error), {"Retry-After": "5"})
