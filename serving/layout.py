"""Where one cache namespace keeps its data in Redis: one hash slot, no key shared with another.

Every key of namespace ``ns`` starts with the root ``{ns::}`` (entries ``{ns::}e:<key>``,
stampede locks ``{ns::}l:<key>``, tag versions ``{ns::}t:<tag>``, the generation ``{ns::}g``,
the stamp ``{ns::}s`` that every invalidation moves).
The braces are a Redis Cluster hash tag: all of a namespace's keys hash to one slot, so the hit
script reads an entry and the versions of its tags together on Redis Cluster as on one Redis.
Cache keys and tags may not contain braces, so nothing after the root can move a key elsewhere.
A namespace is colon-separated segments that are never empty, so it cannot contain ``::``: the
root of ``metrics`` is not a prefix of any key of ``metrics:e:tenant2`` (root
``{metrics:e:tenant2::}``) or of namespace ``metrics:t``, and the other way round; realtime keys
never start with ``{`` followed by ``::}`` (their prefix has no braces and their hash tag holds
``|``).
"""

from __future__ import annotations

import re
from typing import Final

_NAMESPACE_RE: Final = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*")


class Layout:
    """The Redis keys of one namespace."""

    __slots__ = ("generation", "namespace", "root", "stamp")

    def __init__(self, namespace: str) -> None:
        if not isinstance(namespace, str):
            raise ValueError(f"namespace must be a string, not {namespace!r}")
        namespace = namespace.rstrip(":")
        if not _NAMESPACE_RE.fullmatch(namespace):
            raise ValueError(
                f"namespace {namespace!r} must be segments of letters, digits, '_', '.' and '-' "
                "joined by single ':'"
            )
        self.namespace = namespace
        self.root = f"{{{namespace}::}}"
        self.generation = f"{self.root}g"
        self.stamp = f"{self.root}s"

    def entry(self, key: str) -> str:
        """The key holding the entry of cache key ``key``."""
        return f"{self.root}e:{key}"

    def lock(self, key: str) -> str:
        """The stampede lock of cache key ``key``."""
        return f"{self.root}l:{key}"

    def tag(self, tag: str) -> str:
        """The version key of ``tag``."""
        return f"{self.root}t:{tag}"

    def scan_patterns(self) -> tuple[str, str]:
        """SCAN patterns of the entries and locks (braces are literal in a Redis glob)."""
        return f"{self.root}e:*", f"{self.root}l:*"
