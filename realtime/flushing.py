"""When aggregated writes are flushed: every `flush_interval` seconds in the background, on
close, at exit, and never twice after a fork.

The blocking client flushes from a daemon thread; at interpreter exit (``atexit``) each live
client stops its thread and flushes what is left. The asyncio client flushes from a task on
the event loop that first wrote; ``aclose()`` asks the task to stop (it finishes the flush under
way, then flushes once more), and the loop shutting down (the end of ``asyncio.run``) cancels
it, after which it flushes once more too: writes a cancelled flush had taken go again with that
last one (at least once, as buffered writes are). Both start with the first aggregated write.
A process forked from one that aggregates drops the sums it inherited (the parent sends them)
and starts its own flusher.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import weakref
from contextlib import suppress
from typing import TYPE_CHECKING, Protocol

from realtime.driving import run_blocking

if TYPE_CHECKING:
    from realtime.aggregation import Aggregator

logger = logging.getLogger("realtime")


class Flushed(Protocol):
    """A client that aggregates: what the flushers call."""

    flush_interval: float
    aggregator: Aggregator
    flusher: Flusher | None

    async def _flush(self) -> int: ...


class Flusher(Protocol):
    def stop(self) -> None: ...


_AGGREGATING: weakref.WeakSet[Flushed] = weakref.WeakSet()  # blocking clients, flushed at exit


class FlushThread:
    """A daemon thread that flushes a blocking client every interval (holds it weakly)."""

    def __init__(self, client: Flushed) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_flush_every,
            args=(weakref.ref(client), client.flush_interval, self._stop),
            name="realtime-flush",
            daemon=True,
        )
        self._thread.start()
        _AGGREGATING.add(client)

    def stop(self) -> None:
        """Stop the thread and wait for a flush under way to end."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()


def _flush_every(ref: weakref.ref[Flushed], interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        client = ref()
        if client is None:
            return
        try:
            run_blocking(client._flush())
        except Exception:
            logger.exception("realtime background flush failed")
        del client


class FlushTask:
    """An asyncio task that flushes a client every interval, and once more when it stops."""

    def __init__(self, client: Flushed) -> None:
        self._stopping = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(_flush_on_loop(client, self._stopping))

    def stop(self) -> None:
        """Ask the task to end after its last flush (without cutting a flush short)."""
        self._stopping.set()

    async def stopped(self) -> None:
        """Stop the task and wait for its last flush."""
        self.stop()
        with suppress(asyncio.CancelledError):
            await self.task


async def _flush_on_loop(client: Flushed, stopping: asyncio.Event) -> None:
    try:
        while not await _stopped_within(stopping, client.flush_interval):
            try:
                await client._flush()
            except Exception:
                logger.exception("realtime background flush failed")
    finally:
        client.flusher = None  # the next write on a running loop starts another
        await client._flush()


async def _stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for a stop request; whether one came."""
    with suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()
    return stopping.is_set()


_STARTING = threading.Lock()


def ensure_flusher(client: Flushed, on_loop: bool) -> None:
    """Start the background flusher of a client that has just aggregated a write, unless one
    runs: threads whose first writes race start one, so closing stops every flush under way."""
    with _STARTING:
        if client.flusher is None:
            client.flusher = FlushTask(client) if on_loop else FlushThread(client)


def finish_blocking(client: Flushed) -> None:
    """Stop a blocking client's flush thread and flush what is left (close, exit)."""
    flusher = client.flusher
    client.flusher = None
    if flusher is not None:
        flusher.stop()
    _AGGREGATING.discard(client)
    run_blocking(client._flush())


@atexit.register
def _flush_at_exit() -> None:
    for client in list(_AGGREGATING):
        try:
            finish_blocking(client)
        except Exception:
            logger.exception("realtime flush at exit failed")


def _forget_after_fork() -> None:
    """In a forked child: the parent flushes the sums the child inherited; no thread runs."""
    for client in list(_AGGREGATING):
        client.aggregator.take()
        client.flusher = None
    _AGGREGATING.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
