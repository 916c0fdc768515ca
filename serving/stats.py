"""`CacheStats`: thread-safe counters of one cache client, in total and per key prefix.

Kept in process, so a hit stays one round trip to Redis.
"""

from __future__ import annotations

import threading
from typing import Any, Final

TOTALS: Final = (
    "hits",
    "misses",
    "errors",
    "stale_hits",
    "undecodable",
    "lock_waits",
    "lock_timeouts",
    "writes",
    "invalidations",
    "redis_skipped",
)
PER_PREFIX: Final = ("hits", "misses", "errors", "stale_hits")


class CacheStats:
    """Counters of hits, misses, errors and the rest; see `MetricsCache.get_stats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._prefixes: dict[str, dict[str, int]] = {}
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._totals = dict.fromkeys(TOTALS, 0)
            self._prefixes = {}

    def add(self, prefix: str | None, **counts: int) -> None:
        """Add to named counters, and to the key prefix's own where it keeps them."""
        with self._lock:
            for name, n in counts.items():
                self._totals[name] += n
            if prefix is not None:
                bucket = self._bucket(prefix)
                for name, n in counts.items():
                    if name in bucket:
                        bucket[name] += n

    def hit(self, prefix: str) -> None:
        """The hot path's counter: one lock, two increments."""
        with self._lock:
            self._totals["hits"] += 1
            self._bucket(prefix)["hits"] += 1

    def _bucket(self, prefix: str) -> dict[str, int]:
        bucket = self._prefixes.get(prefix)
        if bucket is None:
            bucket = self._prefixes[prefix] = dict.fromkeys(PER_PREFIX, 0)
        return bucket

    def snapshot(self) -> dict[str, Any]:
        """The counters, the hit ratio and the per-prefix counters, as plain dicts."""
        with self._lock:
            totals: dict[str, Any] = dict(self._totals)
            lookups = totals["hits"] + totals["misses"]
            totals["hit_ratio"] = totals["hits"] / lookups if lookups else 0.0
            totals["prefixes"] = {p: dict(c) for p, c in sorted(self._prefixes.items())}
            return totals
