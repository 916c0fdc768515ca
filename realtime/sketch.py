"""A mergeable log-bucket quantile sketch (DDSketch style) and the histogram snapshot.

A positive value v goes to bucket ``ceil(log(v) / log(gamma))`` with
``gamma = (1 + a) / (1 - a)``; every value in a bucket is within relative error ``a`` of the
bucket's representative ``2 * gamma**i / (gamma + 1)``. Buckets are plain integer counts, so
sketches of different time slots merge by addition (HINCRBY in Redis, a sum at read time).
Negative values use their own buckets on |v|; values with |v| below `MIN_INDEXABLE` count as 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LOG_GAMMA = math.log(GAMMA)
MIN_INDEXABLE = 1e-9

ZERO_FIELD = "z"
_POSITIVE = "p"
_NEGATIVE = "m"


def bucket_field(value: float) -> str:
    """The Redis hash field of the bucket that counts `value` (``p<i>``, ``m<i>`` or ``z``)."""
    if value > MIN_INDEXABLE:
        return f"{_POSITIVE}{math.ceil(math.log(value) / LOG_GAMMA)}"
    if value < -MIN_INDEXABLE:
        return f"{_NEGATIVE}{math.ceil(math.log(-value) / LOG_GAMMA)}"
    return ZERO_FIELD


def bucket_value(field_name: str) -> float:
    """The representative value of a bucket: relative error at most RELATIVE_ACCURACY."""
    if field_name == ZERO_FIELD:
        return 0.0
    magnitude = 2 * GAMMA ** int(field_name[1:]) / (GAMMA + 1)
    return magnitude if field_name[0] == _POSITIVE else -magnitude


def is_bucket_field(field_name: str) -> bool:
    """True for sketch bucket fields (as opposed to the s/lo/hi summary fields)."""
    return field_name == ZERO_FIELD or (
        len(field_name) > 1 and field_name[0] in (_POSITIVE, _NEGATIVE)
    )


def nearest_rank(q: float, count: int) -> int:
    """1-based rank of the q-th percentile by the nearest-rank rule: ceil(q/100 * count) >= 1."""
    # Rounding first keeps e.g. 0.9 * 1000 from landing on 900.0000000001 and moving one rank.
    return max(1, math.ceil(round(q * count / 100, 9)))


@dataclass(frozen=True)
class HistogramSnapshot:
    """Count, sum, min and max (exact) and percentiles (within 1% relative) over a window."""

    count: int
    sum: float
    min: float | None
    max: float | None
    buckets: Mapping[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def empty(cls) -> HistogramSnapshot:
        return cls(count=0, sum=0.0, min=None, max=None)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p90(self) -> float | None:
        return self.percentile(90)

    @property
    def p95(self) -> float | None:
        return self.percentile(95)

    @property
    def p99(self) -> float | None:
        return self.percentile(99)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (nearest rank) for q in [0, 100]; None when there is no data."""
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 100:
            raise ValueError(f"percentile must be a number in [0, 100], not {q!r}")
        if not self.count or self.min is None or self.max is None:
            return None
        if q == 0:
            return self.min
        if q == 100:
            return self.max
        rank = nearest_rank(q, self.count)
        seen = 0
        for value, count in _ordered_buckets(self.buckets.items()):
            seen += count
            if seen >= rank:
                return min(max(value, self.min), self.max)
        return self.max


def _ordered_buckets(items: Iterable[tuple[str, int]]) -> list[tuple[float, int]]:
    """Buckets as (representative value, count), in increasing value order."""
    return sorted((bucket_value(name), count) for name, count in items if count > 0)
