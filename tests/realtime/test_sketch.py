"""The log-bucket sketch: relative accuracy and percentile rank rule (no Redis)."""

from __future__ import annotations

import random

import pytest

from realtime.sketch import (
    RELATIVE_ACCURACY,
    HistogramSnapshot,
    bucket_field,
    bucket_value,
    nearest_rank,
)


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if q == 0:
        return ordered[0]
    return ordered[nearest_rank(q, len(ordered)) - 1]


def snapshot_of(values: list[float]) -> HistogramSnapshot:
    buckets: dict[str, int] = {}
    for value in values:
        field = bucket_field(value)
        buckets[field] = buckets.get(field, 0) + 1
    return HistogramSnapshot(len(values), sum(values), min(values), max(values), buckets)


def test_every_value_is_within_the_relative_accuracy_of_its_bucket() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        value = rng.lognormvariate(0, 4) * rng.choice((1, -1))
        representative = bucket_value(bucket_field(value))
        assert abs(representative - value) <= RELATIVE_ACCURACY * abs(value) * (1 + 1e-12)


def test_zero_and_tiny_values_share_the_zero_bucket() -> None:
    assert bucket_field(0) == bucket_field(1e-12) == bucket_field(-1e-12) == "z"
    assert bucket_value("z") == 0.0


@pytest.mark.parametrize("q", [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100])
def test_percentiles_of_mixed_sign_data(q: float) -> None:
    rng = random.Random(3)
    values = [rng.gauss(0, 100) for _ in range(5000)] + [0.0] * 50
    estimate = snapshot_of(values).percentile(q)
    exact = exact_percentile(values, q)
    assert estimate is not None
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * abs(exact) + 1e-12


def test_nearest_rank_rule() -> None:
    assert nearest_rank(50, 4) == 2
    assert nearest_rank(90, 1000) == 900
    assert nearest_rank(99.9, 1000) == 999
    assert nearest_rank(0.01, 10) == 1


def test_empty_snapshot_and_bad_q() -> None:
    empty = HistogramSnapshot.empty()
    assert empty.count == 0 and empty.p50 is None and empty.mean is None
    with pytest.raises(ValueError):
        snapshot_of([1.0]).percentile(101)
