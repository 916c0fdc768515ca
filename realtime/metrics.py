"""`RealtimeMetrics`: live metrics in Redis (realtime.core), one round trip per write.

The blocking client: the policy of `realtime.core` run on a plain redis-py client
(`realtime.driving`); see `realtime.core` for what happens when Redis is unreachable.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis

from realtime.core import RealtimeCore
from realtime.driving import Blocking
from realtime.flushing import finish_blocking

__all__ = ["RealtimeMetrics"]


class RealtimeMetrics(Blocking, RealtimeCore):
    """Live metrics on a `redis.Redis` or `redis.cluster.RedisCluster` client.

    `from_url` builds one with a bounded connection pool and timeouts.
    """

    redis_module: ClassVar[Any] = redis

    def close(self) -> None:
        """Flush what aggregation holds, then release the client's connections."""
        finish_blocking(self)
        self.client.close()

    def __enter__(self) -> RealtimeMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
