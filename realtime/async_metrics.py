"""`AsyncRealtimeMetrics`: the asyncio client (redis.asyncio), the same methods as coroutines.

The policy of `realtime.core` handed to the caller's event loop (`realtime.driving`): same
scripts, key layout, validation, batches and fail-open buffer as `RealtimeMetrics`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis.asyncio

from realtime.core import RealtimeCore
from realtime.driving import Asynchronous
from realtime.flushing import FlushTask

__all__ = ["AsyncRealtimeMetrics"]


class AsyncRealtimeMetrics(Asynchronous, RealtimeCore):
    """Live metrics on a `redis.asyncio.Redis` or `redis.asyncio.cluster.RedisCluster`."""

    redis_module: ClassVar[Any] = redis.asyncio
    awaits_replies: ClassVar[bool] = True

    async def aclose(self) -> None:
        """Flush what aggregation holds, then release the client's connections."""
        flusher, self.flusher = self.flusher, None
        if isinstance(flusher, FlushTask):
            await flusher.stopped()
        await self._flush()
        await self.client.aclose()

    async def __aenter__(self) -> AsyncRealtimeMetrics:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
