"""`/v1/realtime`: batched writes (for apps not written in Python) and reads of one series."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from serving.http.auth import CallerDep, context_of
from serving.http.problems import Problem
from serving.http.responses import JSONResponse

router = APIRouter(prefix="/v1/realtime", tags=["realtime"])

MAX_EVENTS = 1000
Name = Annotated[str, Field(min_length=1, max_length=200)]
Labels = Annotated[dict[str, str], Field(default_factory=dict, max_length=20)]


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    labels: Labels


class CounterWrite(_Write):
    """Add `value` to a counter."""

    type: Literal["counter"]
    value: int | float = 1


class GaugeWrite(_Write):
    """Set a gauge."""

    type: Literal["gauge"]
    value: int | float
    unit: str | None = Field(default=None, max_length=40)


class HistogramWrite(_Write):
    """One observation in a histogram's sliding window."""

    type: Literal["histogram"]
    value: int | float
    window_seconds: int = 300


class RateWrite(_Write):
    """`count` events for a rate over a sliding window."""

    type: Literal["rate"]
    count: int = Field(default=1, ge=1)
    window_seconds: int = 60


Write = Annotated[
    CounterWrite | GaugeWrite | HistogramWrite | RateWrite, Field(discriminator="type")
]


class EventBatch(BaseModel):
    """Writes applied together, in order, in one round trip; all or none are accepted."""

    model_config = ConfigDict(extra="forbid")
    events: list[Write] = Field(min_length=1, max_length=MAX_EVENTS)


@router.post("/events", summary="Apply a batch of counter / gauge / histogram / rate writes")
def write_events(request: Request, caller: CallerDep, batch: EventBatch) -> Response:
    rt = context_of(request).realtime
    with rt.batch() as pending:
        for index, event in enumerate(batch.events):
            labels = event.labels or None
            try:
                match event:
                    case CounterWrite():
                        pending.increment_counter(event.name, event.value, labels)
                    case GaugeWrite():
                        pending.set_gauge(event.name, event.value, labels, event.unit)
                    case HistogramWrite():
                        pending.add_to_histogram(
                            event.name, event.value, event.window_seconds, labels
                        )
                    case RateWrite():
                        pending.track_rate(event.name, event.window_seconds, labels, event.count)
            except (ValueError, TypeError) as error:
                field = f"events.{index}"
                raise Problem(422, f"{field}: {error}", field=field) from None
    return JSONResponse({"accepted": len(batch.events), "results": pending.results})


def _labels(pairs: list[str] | None) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise Problem(422, f"label: write key:value, not {pair!r}", field="label")
        labels[key] = value
    return labels or None


LabelQuery = Annotated[
    list[str] | None, Query(description="a label as key:value; repeat for several", max_length=20)
]
SeriesName = Annotated[str, Path(min_length=1, max_length=200)]


def _checked(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except (ValueError, TypeError) as error:
        raise Problem(422, str(error), field="name") from None


def _unavailable() -> Problem:
    return Problem(503, "Redis is not reachable; realtime figures are unknown right now")


@router.get("/counters/{name}", summary="A counter's total")
def counter(
    request: Request,
    caller: CallerDep,
    name: SeriesName,
    label: LabelQuery = None,
) -> Response:
    labels = _labels(label)
    value = _checked(context_of(request).realtime.get_counter, name, labels)
    if value is None:
        raise _unavailable()
    return JSONResponse({"name": name, "labels": labels or {}, "value": value})


@router.get("/gauges/{name}", summary="A gauge's value (404 if never set)")
def gauge(
    request: Request,
    caller: CallerDep,
    name: SeriesName,
    label: LabelQuery = None,
) -> Response:
    labels = _labels(label)
    value = _checked(context_of(request).realtime.get_gauge, name, labels)
    if value is None:
        raise Problem(404, f"no gauge {name!r} with labels {labels or {}} has a value")
    return JSONResponse({"name": name, "labels": labels or {}, "value": value})


@router.get("/histograms/{name}", summary="Count, sum, min, max, mean and percentiles")
def histogram(
    request: Request,
    caller: CallerDep,
    name: SeriesName,
    label: LabelQuery = None,
    window_seconds: Annotated[int, Query(ge=1)] = 300,
) -> Response:
    labels = _labels(label)
    snap = _checked(context_of(request).realtime.get_histogram, name, window_seconds, labels)
    if snap is None:
        raise _unavailable()
    return JSONResponse(
        {
            "name": name,
            "labels": labels or {},
            "window_seconds": window_seconds,
            "count": snap.count,
            "sum": snap.sum,
            "min": snap.min,
            "max": snap.max,
            "mean": snap.mean,
            "p50": snap.p50,
            "p90": snap.p90,
            "p95": snap.p95,
            "p99": snap.p99,
        }
    )


@router.get("/rates/{name}", summary="Events per second over the window")
def rate(
    request: Request,
    caller: CallerDep,
    name: SeriesName,
    label: LabelQuery = None,
    window_seconds: Annotated[int, Query(ge=1)] = 60,
) -> Response:
    labels = _labels(label)
    value = _checked(context_of(request).realtime.get_rate, name, window_seconds, labels)
    if value is None:
        raise _unavailable()
    return JSONResponse(
        {
            "name": name,
            "labels": labels or {},
            "window_seconds": window_seconds,
            "per_second": value,
        }
    )
