"""The blocking and asyncio clients are the same policy (realtime.core) run two ways: same
methods, same signatures, and a blocking client never suspends."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from realtime import AsyncRealtimeMetrics, RealtimeMetrics
from realtime.core import RealtimeCore
from realtime.driving import api, run_blocking

API = sorted(name for name, value in vars(RealtimeCore).items() if isinstance(value, api))


def test_the_contract_methods_are_core_methods() -> None:
    for name in ("increment_counter", "get_counter", "set_gauge", "get_gauge", "track_rate"):
        assert name in API
    for name in ("add_to_histogram", "get_histogram", "get_rate", "export_prometheus"):
        assert name in API


@pytest.mark.parametrize("name", API)
def test_both_clients_take_the_same_arguments(name: str, redis_url: str) -> None:
    core = inspect.signature(getattr(RealtimeCore, name))
    expected = list(core.parameters.values())[1:]  # without self
    sync = RealtimeMetrics.from_url(redis_url)
    asynchronous = AsyncRealtimeMetrics.from_url(redis_url)
    assert list(inspect.signature(getattr(sync, name)).parameters.values()) == expected
    assert list(inspect.signature(getattr(asynchronous, name)).parameters.values()) == expected
    assert inspect.iscoroutinefunction(getattr(asynchronous, name))
    assert not inspect.iscoroutinefunction(getattr(sync, name))
    assert getattr(RealtimeMetrics, name) is getattr(AsyncRealtimeMetrics, name)  # one source
    sync.close()


def test_run_blocking_refuses_a_coroutine_that_suspends() -> None:
    async def suspends() -> Any:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaitable"):
        run_blocking(suspends())


def test_a_blocking_client_returns_values_and_the_asyncio_one_coroutines(
    rt: RealtimeMetrics, redis_url: str, redis_prefix: str
) -> None:
    assert rt.increment_counter("driven", 2) == 2

    async def scenario() -> Any:
        async with AsyncRealtimeMetrics.from_url(redis_url, prefix=redis_prefix) as art:
            pending = art.increment_counter("driven", 3)
            assert inspect.iscoroutine(pending)
            return await pending

    assert asyncio.run(scenario()) == 5
