"""Which redis-py errors mean "Redis is unavailable" (fail open buffers) rather than a bug."""

from __future__ import annotations

from redis.exceptions import (
    ClusterError,
    ConnectionError,
    OutOfMemoryError,
    ReadOnlyError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

# Unreachable, timed out, loading, cluster down or resharding, failover in progress, or full:
# the write may succeed later, so fail open buffers it. Anything else (e.g. WRONGTYPE) raises.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    ClusterError,
    ReadOnlyError,
    OutOfMemoryError,
    TryAgainError,
    SlotNotCoveredError,
)
