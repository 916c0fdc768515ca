"""The decoded values of recently hit cache entries, for the cache's hot path.

A dashboard asks for the same entries again and again, and decoding JSON full of Decimals and
dates costs more than the Redis round trip that fetched it. The memo keeps, per cache key, the
entry's JSON body and its decoded value: a hit whose body is byte-for-byte the one decoded last
time gets a copy of that value (new dicts and lists; the leaves are immutable) instead. Plain
JSON (no Decimals, dates or other markers) is not kept: orjson decodes it faster than that. It is
checked against what Redis returned on every hit, so it can never serve a value Redis no longer
holds. Bounded by the total size of the bodies it keeps; thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from serving.serialization import copy_tree, loads, loads_plain, needs_hooks

__all__ = ["DecodedMemo"]


class DecodedMemo:
    """Per-key memo of (JSON body, decoded value), least recently used evicted first."""

    def __init__(self, max_bytes: int = 8 * 1024 * 1024, max_entry_bytes: int = 256 * 1024):
        """``max_bytes``: total size of the bodies kept (0 disables the memo);
        ``max_entry_bytes``: larger bodies are decoded every time."""
        if max_bytes < 0 or max_entry_bytes < 0:
            raise ValueError("max_bytes and max_entry_bytes must be >= 0")
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self._entries: OrderedDict[str, tuple[bytes, Any]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def loads(self, key: str, body: bytes) -> Any:
        """The value of `body` (the JSON of cache entry `key`); raises ValueError if corrupt."""
        if not needs_hooks(body):
            return loads_plain(body)  # orjson decodes it faster than a copy is made
        if len(body) > self.max_entry_bytes:
            return loads(body)
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == body:
                self._entries.move_to_end(key)
                return copy_tree(found[1])
        value = loads(body)
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._size -= len(previous[0])
            self._entries[key] = (body, value)
            self._size += len(body)
            while self._size > self.max_bytes:
                _, (old_body, _) = self._entries.popitem(last=False)
                self._size -= len(old_body)
        return copy_tree(value)

    def clear(self) -> None:
        """Forget every kept value."""
        with self._lock:
            self._entries.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._entries)
