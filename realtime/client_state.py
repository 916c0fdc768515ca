"""What the sync and asyncio clients share: settings, scripts, the write buffer, failure state.

Only the I/O differs between `RealtimeMetrics` and `AsyncRealtimeMetrics`; everything that
does no I/O lives here once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from realtime.buffer import WriteBuffer
from realtime.operations import Operations, Settings, cluster_slot_function
from realtime.scripts import SCRIPT_NAMES
from realtime.series import validate_prefix

logger = logging.getLogger("realtime")


class ClientState:
    """Settings, registered scripts, the bounded write buffer and the up/down bookkeeping."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "rt:",
        fail_open: bool = True,
        buffer_size: int = 10_000,
        retry_interval: float = 1.0,
        idle_ttl: int | None = 7 * 24 * 3600,
        counter_hours: int = 26,
        registry_refresh: int = 3600,
    ) -> None:
        self.client = client
        self.settings = Settings(validate_prefix(prefix), idle_ttl, counter_hours, registry_refresh)
        self.ops = Operations(self.settings)
        self.fail_open = fail_open
        self.retry_interval = retry_interval
        self.buffer = WriteBuffer(buffer_size)
        self.read_errors = 0
        self.write_errors = 0
        self._scripts = {
            name: client.register_script(self.settings.script_source(name)) for name in SCRIPT_NAMES
        }
        # Script objects give the source and reload semantics; the hot path sends their SHA
        # as bytes, which redis-py passes through without re-encoding.
        self._shas = {name: script.sha.encode("ascii") for name, script in self._scripts.items()}
        self._degraded = False  # buffer non-empty or Redis recently unreachable
        self._down_until = 0.0
        self._slot_of = cluster_slot_function(client)

    def stats(self) -> dict[str, int]:
        """Counters of the failure machinery: buffered, replayed, dropped, failed, pending,
        write_errors and read_errors (Redis unreachable)."""
        return {
            "buffered": self.buffer.buffered,
            "replayed": self.buffer.replayed,
            "dropped": self.buffer.dropped,
            "failed": self.buffer.failed,
            "pending": len(self.buffer),
            "write_errors": self.write_errors,
            "read_errors": self.read_errors,
        }

    def _went_down(self, error: Exception) -> None:
        if not self._degraded:
            logger.warning(
                "Redis unreachable (%s); realtime writes are buffered (fail open)", error
            )
        self._degraded = True
        self._down_until = time.monotonic() + self.retry_interval
