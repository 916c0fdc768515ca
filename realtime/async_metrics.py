"""`AsyncRealtimeMetrics`: the asyncio client (redis.asyncio), the same methods as coroutines.

The policy of `realtime.core` handed to the caller's event loop (`realtime.driving`): same
scripts, key layout, validation, batches and fail-open buffer as `RealtimeMetrics`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis.asyncio

from realtime.core import RealtimeCore
from realtime.driving import Asynchronous

__all__ = ["AsyncRealtimeMetrics"]


class AsyncRealtimeMetrics(Asynchronous, RealtimeCore):
    """Live metrics on a `redis.asyncio.Redis` or `redis.asyncio.cluster.RedisCluster`."""

    redis_module: ClassVar[Any] = redis.asyncio
    awaits_replies: ClassVar[bool] = True

    async def aclose(self) -> None:
        """Release the client's connections."""
        await self.client.aclose()

    async def __aenter__(self) -> AsyncRealtimeMetrics:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
