"""The one "Redis is down" policy, shared by the realtime client and the dashboard cache.

Which redis-py errors mean "Redis is unavailable" (the call may succeed later) rather than a
bug, and what follows from one: Redis is left alone for ``retry_interval`` seconds, so an outage
costs the application one timeout rather than one per call, and each outage is logged once when
it starts and once when it ends. No I/O here: the clients ask and report.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import (
    ClusterError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

# What redis-py raises for Redis' sake: its errors, and RedisClusterException, which is no
# RedisError (a cluster client's usage error, or the whole cluster unreachable). An `except`
# catches these and asks `unavailable` what the error means.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)

# Unreachable, timed out, loading, cluster down or resharding, failover in progress, or full:
# the call may succeed later.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    ClusterError,
    ReadOnlyError,
    OutOfMemoryError,
    TryAgainError,
    SlotNotCoveredError,
)


def unavailable(error: BaseException) -> bool:
    """The one answer to "is Redis unavailable?" (the call may succeed later): one of
    UNAVAILABLE_ERRORS, or the RedisClusterException redis-py raises when re-reading a
    cluster's slots reached no node (the whole cluster down; its cause is then one of them).
    Anything else (WRONGTYPE, a cluster client's usage error) is a bug, for callers to raise."""
    if isinstance(error, UNAVAILABLE_ERRORS):
        return True
    return isinstance(error, RedisClusterException) and isinstance(
        error.__cause__, UNAVAILABLE_ERRORS
    )


class Availability:
    """Whether Redis may be tried now, given the failures seen; logs outages once."""

    def __init__(self, retry_interval: float, logger: logging.Logger, meanwhile: str) -> None:
        """``meanwhile``: what the client does during an outage, for the log line."""
        if retry_interval < 0:
            raise ValueError(f"retry interval must be >= 0 seconds, not {retry_interval!r}")
        self.retry_interval = float(retry_interval)
        self.down = False
        self._until = 0.0
        self._logger = logger
        self._meanwhile = meanwhile

    def paused(self) -> bool:
        """True while Redis is being left alone after it was found unavailable."""
        return self._until > 0.0 and time.monotonic() < self._until

    def failed(self, error: BaseException) -> bool:
        """Report an error from Redis; True when it means Redis is unavailable (then paused)."""
        if not unavailable(error):
            return False
        if not self.down:
            self._logger.warning("Redis unavailable (%s); %s", error, self._meanwhile)
        self.down = True
        self._until = time.monotonic() + self.retry_interval
        return True

    def recovered(self) -> None:
        """Report a call that reached Redis after an outage."""
        if self.down:
            self._logger.info("Redis reachable again")
        self.down = False
        self._until = 0.0

    def retry_now(self) -> None:
        """End the pause early (an explicit flush or health check)."""
        self._until = 0.0
