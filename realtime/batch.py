"""`Batch`: writes collected inside ``with rt.batch() as b:`` and sent as one pipeline."""

from __future__ import annotations

from realtime.operations import Labels, Number, Op, Operations


class Batch:
    """Collects writes; the client sends them together when the ``with`` block ends.

    The methods mirror the client's writes. After the block, `results` holds each write's
    result in order (the new total for counters, None for the others or when buffered).
    """

    def __init__(self, operations: Operations) -> None:
        self._operations = operations
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
        self.ops.append(self._operations.add_to_histogram(name, value, window_seconds, labels))

    def track_rate(
        self, name: str, window_seconds: int = 60, labels: Labels = None, count: int = 1
    ) -> None:
        self.ops.append(self._operations.track_rate(name, window_seconds, labels, count))

    def __len__(self) -> int:
        return len(self.ops)
