"""The decoded values of recently hit cache entries, for the cache's hot path.

A dashboard asks for the same entries again and again, and decoding their JSON (orjson for
plain JSON, Python hooks for Decimals and dates) costs more than copying a decoded value. The
memo keeps, per cache key, the entry's JSON body and its decoded value: a hit whose body is
byte-for-byte the one decoded last time gets a copy of that value (new dicts and lists, the
leaves are immutable; `serialization.copier` plans the copy once per value) instead. It is
checked against what Redis returned on every hit, so it can never serve a value Redis no longer
holds. Bounded by the total size of the bodies it keeps; thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from serving.serialization import copier, loads

__all__ = ["DecodedMemo"]


class DecodedMemo:
    """Per-key memo of (JSON body, copier of its decoded value), least recently used evicted
    first."""

    def __init__(self, max_bytes: int = 8 * 1024 * 1024, max_entry_bytes: int = 256 * 1024):
        """``max_bytes``: total size of the bodies kept (0 disables the memo);
        ``max_entry_bytes``: larger bodies are decoded every time."""
        if max_bytes < 0 or max_entry_bytes < 0:
            raise ValueError("max_bytes and max_entry_bytes must be >= 0")
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self._entries: OrderedDict[str, tuple[bytes, Callable[[], Any]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def loads(self, key: str, body: bytes) -> Any:
        """The value of `body` (the JSON of cache entry `key`); raises ValueError if corrupt."""
        if len(body) > self.max_entry_bytes:
            return loads(body)
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == body:
                self._entries.move_to_end(key)
                copy: Callable[[], Any] | None = found[1]
            else:
                copy = None
        if copy is not None:
            return copy()
        value = loads(body)
        try:
            copy = copier(value)
        except RecursionError:  # too deep to plan a copy: hand this one out, keep nothing
            return value
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._size -= len(previous[0])
            self._entries[key] = (body, copy)
            self._size += len(body)
            while self._size > self.max_bytes:
                _, (old_body, _) = self._entries.popitem(last=False)
                self._size -= len(old_body)
        return copy()

    def clear(self) -> None:
        """Forget every kept value."""
        with self._lock:
            self._entries.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._entries)
