"""`CacheEntry`: one value for `MetricsCache.warm_cache` to compute and store ahead of time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from serving.ttl import resolve_ttl


@dataclass(frozen=True)
class CacheEntry:
    """A cache key, how to compute its value, for how long and with which tags."""

    key: str
    compute: Callable[[], Any]
    ttl: int | float | str = "default"
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key, str):
            raise ValueError(f"warm_cache entry key must be a string, not {self.key!r}")
        if not callable(self.compute):
            raise ValueError(f"warm_cache entry {self.key!r}: compute must be callable")
        if isinstance(self.tags, str):
            raise ValueError(f"warm_cache entry {self.key!r}: tags must be a list, not a string")
        object.__setattr__(self, "tags", tuple(self.tags))
        resolve_ttl(self.ttl)

    @classmethod
    def of(cls, entry: CacheEntry | Mapping[str, Any]) -> CacheEntry:
        """An entry as given, or built from a mapping with ``key``, ``compute`` and optional
        ``ttl`` and ``tags``; a clear ValueError for anything else."""
        if isinstance(entry, CacheEntry):
            return entry
        if not isinstance(entry, Mapping):
            raise ValueError(f"warm_cache entries are CacheEntry or mappings, not {entry!r}")
        unknown = set(entry) - {"key", "compute", "ttl", "tags"}
        if unknown:
            raise ValueError(f"warm_cache entry has unknown fields {sorted(unknown)}: {entry!r}")
        for needed in ("key", "compute"):
            if needed not in entry:
                raise ValueError(f"warm_cache entry needs {needed!r}: {entry!r}")
        tags: Iterable[str] = entry.get("tags", ())
        if isinstance(tags, str):
            raise ValueError(f"warm_cache entry {entry['key']!r}: tags must be a list")
        return cls(entry["key"], entry["compute"], entry.get("ttl", "default"), tuple(tags))
