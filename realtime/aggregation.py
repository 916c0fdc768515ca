"""Client-side aggregation (``flush_interval``): writes merged in process, sent once per interval.

Like a Prometheus client library or a statsd agent, the client adds up what it is given and
sends the sums: the increments of one counter become one INCRBY, the counts of one rate one
INCRBY on its current slot, the observations of one histogram one merge of their sketch (the
bucket counts add, the sums add, min and max are compared) into its current slot. Each series
then costs Redis one script call per interval, whatever the number of writes. `Aggregator` only
merges (thread-safe, no I/O); `realtime.core` flushes it from a background thread or asyncio
task, on close and at exit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from realtime.labels import MAX_MAGNITUDE
from realtime.operations import Number, Op
from realtime.sketch import bucket_field

# What aggregation merges: the writes that add up. Gauges, unique counts and top-k go as they are.
MERGED = frozenset({"counter_incr", "rate_track", "histogram_add"})


@dataclass(slots=True)
class _Histogram:
    """Observations of one histogram since the last flush: a sketch like a time slot's."""

    total: Number
    low: Number
    high: Number
    buckets: dict[str, int] = field(default_factory=dict)

    def add(self, value: Number, bucket: str) -> None:
        """One observation and its sketch bucket field."""
        self.total += value
        if value < self.low:
            self.low = value
        elif value > self.high:
            self.high = value
        self.buckets[bucket] = self.buckets.get(bucket, 0) + 1

    def summary(self) -> str:
        """The text histogram_merge (realtime/lua/_writes.lua) reads: sum|lo|hi|field=n,..."""
        buckets = ",".join(f"{name}={count}" for name, count in self.buckets.items())
        return f"{_text(self.total)}|{_text(self.low)}|{_text(self.high)}|{buckets}"


def _text(value: Number) -> str:
    """A number as redis-py would send it (repr of a float reads back exactly)."""
    return repr(value) if isinstance(value, float) else str(value)


class Aggregator:
    """The merged writes since the last `take`, by script and series key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums: dict[tuple[str, bytes], tuple[Op, Number]] = {}
        self._histograms: dict[bytes, tuple[Op, _Histogram]] = {}
        self._ready: list[Op] = []  # sums that reached 2**53 and were closed
        self.merged = 0  # writes taken in, ever

    def __len__(self) -> int:
        return len(self._sums) + len(self._histograms) + len(self._ready)

    def add(self, op: Op) -> None:
        """Merge one counter, rate or histogram write."""
        with self._lock:
            self.merged += 1
            if op.script == "histogram_add":
                value = op.args[0]
                assert isinstance(value, int | float)
                # A single write's op carries its bucket (Operations.add_to_histogram).
                bucket = str(op.args[2]) if len(op.args) > 2 else bucket_field(value)
                found = self._histograms.get(op.key)
                if found is None:
                    sketch = _Histogram(value, value, value, {bucket: 1})
                    self._histograms[op.key] = (op, sketch)
                else:
                    found[1].add(value, bucket)
                return
            slot = (op.script, op.key)
            amount = op.args[0]
            assert isinstance(amount, int | float)
            found_sum = self._sums.get(slot)
            if found_sum is None:
                self._sums[slot] = (op, amount)
                return
            first, total = found_sum
            if abs(total + amount) > MAX_MAGNITUDE:  # keep each sum exact in Redis
                self._ready.append(first._replace(args=(total, *first.args[1:])))
                self._sums[slot] = (op, amount)
            else:
                self._sums[slot] = (first, total + amount)

    def put_back(self, ops: list[Op]) -> None:
        """Return taken writes that did not go out (their flush was cancelled): the next
        `take` sends them as they are."""
        with self._lock:
            self._ready.extend(ops)

    def take(self) -> list[Op]:
        """The merged writes to send (one per series), emptying the aggregator."""
        with self._lock:
            sums, histograms, ready = self._sums, self._histograms, self._ready
            self._sums, self._histograms, self._ready = {}, {}, []
        ops = ready + [
            first._replace(args=(total, *first.args[1:])) for first, total in sums.values()
        ]
        ops.extend(
            Op("histogram_merge", key, (merged.summary(), first.args[1]), first.series)
            for key, (first, merged) in histograms.items()
        )
        return ops
