"""`/v1/custom-metrics`: definitions, test runs, calculations and stored values, acting for the
caller's principal through the custom-metrics service (its visibility and edit rules apply)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from custom_metrics import (
    CalculationResult,
    CustomMetricService,
    MetricValidationError,
    TimeGrain,
)
from custom_metrics.periods import split_period, whole_day_period
from custom_metrics.store import StoredDefinition, StoredValue
from serving.http.auth import Caller, CallerDep, context_of
from serving.http.responses import JSONResponse
from serving.http.rollups import plain

router = APIRouter(prefix="/v1/custom-metrics", tags=["custom metrics"])

_tables_ready: set[tuple[str, str, str]] = set()
_tables_lock = threading.Lock()

Definition = Annotated[dict[str, Any], Body(description="a custom metric definition")]


class CalculateRequest(BaseModel):
    """The period to calculate, half-open, and optionally a grain to split it by."""

    model_config = ConfigDict(extra="forbid")

    start: date
    end: date
    grain: TimeGrain | None = None


@contextmanager
def _service(request: Request, caller: Caller) -> Iterator[CustomMetricService]:
    """The service acting for the caller, on a request's connection (tables made once)."""
    context = context_of(request)
    config = context.settings.warehouse
    marker = (config.target, config.duckdb_path, config.schema)
    with context.pool.connection() as wh:
        with _tables_lock:
            ready = marker in _tables_ready
        service = CustomMetricService(wh, caller.principal, ensure_tables=not ready)
        if not ready:
            with _tables_lock:
                _tables_ready.add(marker)
        yield service


def definition_json(stored: StoredDefinition) -> dict[str, Any]:
    """A stored definition as the API shows it: its `id`, version and fields."""
    return {
        "id": stored.definition_id,
        "version": stored.version,
        "created_by": stored.created_by,
        "created_at": stored.created_at.isoformat(),
        **stored.definition.model_dump(mode="json"),
    }


def _value_json(value: StoredValue) -> dict[str, Any]:
    return {
        "period_start": value.period_start.isoformat(),
        "period_end": value.period_end.isoformat(),
        "dimensions": {k: plain(v) for k, v in value.dimensions.items()},
        "value": plain(value.value),
        **{k: plain(v) for k, v in value.extra.items()},
        "definition_version": value.definition_version,
        "computed_at": value.computed_at.isoformat(),
    }


@router.get("", summary="The definitions the caller may see (current versions)")
def list_definitions(
    request: Request,
    caller: CallerDep,
    include_inactive: Annotated[bool, Query()] = False,
) -> Response:
    with _service(request, caller) as service:
        found = service.list_definitions(include_inactive=include_inactive)
    return JSONResponse({"data": [definition_json(s) for s in found], "next_cursor": None})


@router.post("", status_code=201, summary="Create a definition (422 and nothing stored if invalid)")
def create_definition(request: Request, caller: CallerDep, definition: Definition) -> Response:
    with _service(request, caller) as service:
        stored = service.create_definition(definition)
    return JSONResponse(
        definition_json(stored),
        status_code=201,
        headers={"Location": f"/v1/custom-metrics/{stored.definition_id}"},
    )


@router.post("/test", summary="Validate and run a definition on a sample period; nothing saved")
def test_definition(
    request: Request,
    caller: CallerDep,
    definition: Definition,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
) -> Response:
    with _service(request, caller) as service:
        run = service.test_metric_definition(definition, start, end)
    return JSONResponse(
        {
            "sql": run.compiled.sql,
            "params": {k: plain(v) for k, v in run.compiled.params.items()},
            "columns": run.columns,
            "rows": [[plain(v) for v in row] for row in run.rows],
            "cost": {
                "class": run.cost.cost_class.value,
                "estimate": run.cost.estimate,
                "unit": run.cost.unit,
            },
            "duration_ms": run.duration_ms,
            "answered_from": run.answered_from,
            "fallback_reason": run.fallback_reason,
        }
    )


@router.get("/{definition_id}", summary="One definition (404 when the caller may not see it)")
def get_definition(
    request: Request,
    caller: CallerDep,
    definition_id: str,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    with _service(request, caller) as service:
        stored = service.get_definition(definition_id, version)
    return JSONResponse(definition_json(stored))


@router.patch("/{definition_id}", summary="A new version with the given fields changed")
def update_definition(
    request: Request, caller: CallerDep, definition_id: str, changes: Definition
) -> Response:
    with _service(request, caller) as service:
        stored = service.update_definition(definition_id, changes)
    return JSONResponse(definition_json(stored))


@router.delete(
    "/{definition_id}",
    status_code=204,
    summary="Deactivate (a new inactive version; the history stays)",
)
def delete_definition(request: Request, caller: CallerDep, definition_id: str) -> Response:
    with _service(request, caller) as service:
        service.deactivate_definition(definition_id)
    return Response(status_code=204)


def _result_json(result: CalculationResult) -> list[dict[str, Any]]:
    return [
        {
            "period_start": v.period_start.isoformat(),
            "period_end": v.period_end.isoformat(),
            "dimensions": {k: plain(d) for k, d in v.dimensions.items()},
            "value": plain(v.value),
            **{k: plain(x) for k, x in v.extra.items()},
        }
        for v in result.values
    ]


@router.post("/{definition_id}/calculate", summary="Calculate [start, end) and store the values")
def calculate(
    request: Request, caller: CallerDep, definition_id: str, period: CalculateRequest
) -> Response:
    try:
        lo, hi = whole_day_period(period.start, period.end)
    except MetricValidationError as error:
        raise MetricValidationError("start", error.reason) from None
    week_start = context_of(request).settings.warehouse.week_start_index
    buckets = split_period(lo, hi, period.grain, week_start)
    values: list[dict[str, Any]] = []
    results: list[CalculationResult] = []
    with _service(request, caller) as service:
        for bucket_start, bucket_end in buckets:
            result = service.calculate_metric(definition_id, bucket_start, bucket_end)
            results.append(result)
            values.extend(_result_json(result))
    return JSONResponse(
        {
            "id": definition_id,
            "version": results[-1].definition_version,
            "start": lo.isoformat(),
            "end": hi.isoformat(),
            "grain": period.grain.value if period.grain else None,
            "status": "SUCCESS",
            "values": values,
            "duration_ms": sum(r.duration_ms for r in results),
        }
    )


@router.get("/{definition_id}/values", summary="Stored values of a visible definition")
def stored_values(request: Request, caller: CallerDep, definition_id: str) -> Response:
    with _service(request, caller) as service:
        found = service.values(definition_id)
    return JSONResponse({"data": [_value_json(v) for v in found], "next_cursor": None})
