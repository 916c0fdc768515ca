"""The bounded in-process buffer that holds writes while Redis is unreachable (fail open).

When full, the oldest write is dropped to make room: newer gauge values matter more, and
counter losses are corrected by reconciliation. Every drop is counted; drops are logged at most
once per `log_interval` seconds so an outage cannot flood the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

from realtime.operations import Op

logger = logging.getLogger("realtime.buffer")


class WriteBuffer:
    """A thread-safe FIFO of pending writes with a maximum length and counters."""

    def __init__(self, maxlen: int, log_interval: float = 10.0) -> None:
        if maxlen < 0:
            raise ValueError("buffer_size must be >= 0")
        self.maxlen = maxlen
        self.buffered = 0  # writes ever put in the buffer
        self.replayed = 0  # writes sent to Redis from the buffer
        self.dropped = 0  # writes lost because the buffer was full
        self.failed = 0  # buffered writes Redis rejected on replay (not retried)
        self._items: deque[Op] = deque()
        self._lock = threading.Lock()
        self._log_interval = log_interval
        self._last_log = float("-inf")
        self._unlogged_drops = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, op: Op) -> None:
        """Append one write, dropping the oldest if the buffer is full."""
        with self._lock:
            self.buffered += 1
            self._items.append(op)
            if len(self._items) > self.maxlen:
                self._items.popleft()
                self._note_drop()

    def take(self, limit: int) -> list[Op]:
        """Remove and return up to `limit` of the oldest writes."""
        with self._lock:
            count = min(limit, len(self._items))
            return [self._items.popleft() for _ in range(count)]

    def put_back(self, ops: Iterable[Op]) -> None:
        """Return writes that could not be replayed to the front, in their order."""
        with self._lock:
            self._items.extendleft(reversed(list(ops)))
            while len(self._items) > self.maxlen:
                self._items.popleft()
                self._note_drop()

    def _note_drop(self) -> None:
        self.dropped += 1
        self._unlogged_drops += 1
        now = time.monotonic()
        if now - self._last_log >= self._log_interval:
            logger.warning(
                "realtime write buffer full (%d writes): dropped %d write(s), %d in total",
                self.maxlen,
                self._unlogged_drops,
                self.dropped,
            )
            self._last_log = now
            self._unlogged_drops = 0
