"""Cardinality limits: at most `max_label_sets` label sets per metric, the rest in one series.

As OpenTelemetry's SDKs do (2000 by default): once a metric (one kind and name) has its limit of
label sets, writes with a new label set go to the metric's overflow series, labelled
``otel_metric_overflow="true"``, which is exported like any other series. The admitted label
sets are kept in Redis, in the set ``P{names}:l:<kind>:<name>`` next to the exported names
(realtime.names), so every process shares one limit; each process asks once per label set
(the same call that claims the names) and remembers the answer. `realtime.registry.cleanup`
forgets the label sets whose series are gone.
"""

from __future__ import annotations

import dataclasses

from realtime.labels import OVERFLOW_LABELS
from realtime.series import Series

DEFAULT_MAX_LABEL_SETS = 2000
# Per-process memory of label sets sent to the overflow series, cleared when it grows this big.
OVERFLOW_MEMORY = 10_000


def validate_limit(max_label_sets: int | None) -> int:
    """The limit as the claim script takes it: a positive int, or 0 for none (None)."""
    if max_label_sets is None:
        return 0
    if max_label_sets.__class__ is not int or max_label_sets < 1:
        raise ValueError(f"max_label_sets must be None or an int >= 1, not {max_label_sets!r}")
    return max_label_sets


def label_sets_key(names_key: str, owner: str) -> str:
    """The set of a metric's admitted label texts (in the names hash's Redis Cluster slot)."""
    return f"{names_key}:l:{owner}"


def overflow_series(series: Series) -> Series:
    """The series that takes the writes of `series` once its metric is at its limit."""
    return dataclasses.replace(series, labels=OVERFLOW_LABELS)
