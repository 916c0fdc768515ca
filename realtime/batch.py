"""`Batch`: writes collected inside ``with rt.batch() as b:`` and sent as one pipeline."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from realtime.driving import run_blocking
from realtime.operations import Labels, Number, Op, Operations

Sender = Callable[[Sequence[Op]], Coroutine[Any, Any, tuple[list[Number | None], Exception | None]]]


class Batch:
    """Collects writes; the client sends them together when the ``with`` block ends.

    The methods mirror the client's writes. After the block, `results` holds each write's
    result in order (the new total for counters, None for the others or when buffered).
    ``with`` sends on a blocking client, ``async with`` on an asyncio one; nothing is sent
    if the block raises.
    """

    def __init__(self, operations: Operations, send: Sender) -> None:
        self._operations = operations
        self._send = send
        self.ops: list[Op] = []
        self.results: list[Number | None] = []

    def increment_counter(self, name: str, value: Number = 1, labels: Labels = None) -> None:
        self.ops.append(self._operations.increment_counter(name, value, labels))

    def set_gauge(
        self, name: str, value: Number, labels: Labels = None, unit: str | None = None
    ) -> None:
        self.ops.append(self._operations.set_gauge(name, value, labels, unit))

    def add_to_histogram(
        self, name: str, value: Number, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        self.ops.append(
            self._operations.add_to_histogram(name, value, window_seconds, labels, bucket=False)
        )

    def track_rate(
        self, name: str, window_seconds: int = 60, labels: Labels = None, count: int = 1
    ) -> None:
        self.ops.append(self._operations.track_rate(name, window_seconds, labels, count))

    def track_unique(
        self, name: str, member: str | int, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        self.ops.append(self._operations.track_unique(name, member, window_seconds, labels))

    def track_top(
        self, name: str, item: str, window_seconds: int = 300, labels: Labels = None
    ) -> None:
        self.ops.append(self._operations.track_top(name, item, window_seconds, labels))

    def __len__(self) -> int:
        return len(self.ops)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self._finish(run_blocking(self._send(self.ops)))

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self._finish(await self._send(self.ops))

    def _finish(self, outcome: tuple[list[Number | None], Exception | None]) -> None:
        self.results, error = outcome
        if error is not None:
            raise error
