"""Values beyond what Redis and the warehouse backup store exactly are refused at the call,
with a clear error, in fail-open mode too; nothing is written or buffered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.labels import MAX_MAGNITUDE, InvalidValueError
from realtime.persistence import backup_to_warehouse
from tests.realtime.support import free_port
from warehouse import Warehouse

WRITES: dict[str, Callable[[RealtimeMetrics, Any], object]] = {
    "counter": lambda rt, v: rt.increment_counter("hits", v),
    "gauge": lambda rt, v: rt.set_gauge("depth", v),
    "histogram": lambda rt, v: rt.add_to_histogram("latency", v, 60),
    "rate count": lambda rt, v: rt.track_rate("rps", 60, count=v),
}
TOO_BIG = [10**400, 10**30, MAX_MAGNITUDE + 1, -(MAX_MAGNITUDE + 1), 1e300, -1e17]


@pytest.mark.parametrize("what", sorted(WRITES))
@pytest.mark.parametrize(
    "value", TOO_BIG, ids=["1e400", "1e30", "2**53+1", "-(2**53+1)", "1e300 float", "-1e17 float"]
)
def test_oversized_values_are_refused_at_the_call(
    rt: RealtimeMetrics, what: str, value: int | float
) -> None:
    if what == "rate count" and (isinstance(value, float) or value < 0):
        pytest.skip("a count is a positive int")
    with pytest.raises(InvalidValueError, match=r"2\*\*53"):
        WRITES[what](rt, value)
    assert rt.stats()["buffered"] == 0


def test_the_largest_exact_value_is_accepted_and_read_back(rt: RealtimeMetrics) -> None:
    assert rt.increment_counter("edge", MAX_MAGNITUDE) == MAX_MAGNITUDE
    assert rt.increment_counter("edge", -MAX_MAGNITUDE) == 0
    rt.set_gauge("edge_gauge", -MAX_MAGNITUDE)
    assert rt.get_gauge("edge_gauge") == -MAX_MAGNITUDE
    rt.track_rate("edge_rate", 60, count=MAX_MAGNITUDE)


def test_fail_open_refuses_too_without_buffering() -> None:
    rt = RealtimeMetrics.from_url(
        f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, retry_interval=60
    )
    try:
        rt.increment_counter("hits")  # Redis is down: buffered
        for what, write in WRITES.items():
            with pytest.raises(InvalidValueError):
                write(rt, 10**30)
            assert rt.stats()["buffered"] == 1, what
        with pytest.raises(InvalidValueError), rt.batch() as batch:
            batch.increment_counter("hits", 10**400)
    finally:
        rt.close()


def test_async_client_refuses_too(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> None:
        async with AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as rt:
            with pytest.raises(InvalidValueError):
                await rt.track_rate("rps", 60, count=10**30)

    asyncio.run(scenario())


def test_backup_of_the_largest_values_is_exact(rt: RealtimeMetrics, warehouse: Warehouse) -> None:
    rt.increment_counter("edge", MAX_MAGNITUDE)
    rt.set_gauge("edge_gauge", -MAX_MAGNITUDE)
    assert backup_to_warehouse(rt, warehouse)["counter"] == 1
    rows = warehouse.query(
        f"select name, value from {warehouse.schema}.realtime_metrics_cache"
        f" where key_prefix = {warehouse.param('prefix')} and metric_kind in ('counter', 'gauge')",
        {"prefix": rt.settings.prefix},
    )
    stored = dict(rows)
    assert stored == {"edge": float(MAX_MAGNITUDE), "edge_gauge": float(-MAX_MAGNITUDE)}
    assert int(stored["edge"]) == MAX_MAGNITUDE
