"""Metric names and labels: validation, canonical order-insensitive encoding (no Redis)."""

from __future__ import annotations

import pytest

from realtime.labels import (
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    InvalidLabelsError,
    InvalidMetricNameError,
    InvalidValueError,
    RealtimeValidationError,
    canonical_labels,
    parse_labels,
    validate_name,
    validate_number,
    validate_window,
)


def test_canonical_labels_are_order_insensitive() -> None:
    assert canonical_labels({"b": "2", "a": "1"}) == canonical_labels({"a": "1", "b": "2"})
    assert canonical_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert canonical_labels(None) == canonical_labels({}) == ""


def test_separators_in_values_are_escaped_and_round_trip() -> None:
    labels = {"path": "/a,b=c|d{e}%f", "q": 'say "hi" \\ there', "u": "ünïcode ✓"}
    text = canonical_labels(labels)
    assert "{" not in text and "}" not in text and "|" not in text
    assert parse_labels(text) == labels


@pytest.mark.parametrize(
    "labels",
    [
        {f"k{i}": "v" for i in range(MAX_LABELS + 1)},  # too many
        {"1abc": "v"},  # key must not start with a digit
        {"a-b": "v"},  # key characters
        {"": "v"},
        {"__name": "v"},  # reserved prefix
        {"quantile": "0.5"},  # used by the Prometheus exposition
        {"window": "60"},
        {"k" * 129: "v"},  # key too long
        {"k": "v" * (MAX_LABEL_VALUE_LENGTH + 1)},  # value too long
        {"k": ""},  # empty value
        {"k": "line\nbreak"},  # control character
        {"k": 200},  # not a string
        ["k", "v"],  # not a mapping
    ],
)
def test_invalid_labels_raise_a_clear_value_error(labels: object) -> None:
    with pytest.raises(InvalidLabelsError) as error:
        canonical_labels(labels)  # type: ignore[arg-type]
    assert isinstance(error.value, ValueError)
    assert isinstance(error.value, RealtimeValidationError)


@pytest.mark.parametrize("name", ["", "1abc", "a-b", ".ab", "1.x", "x" * 201, None, 5, "a b"])
def test_invalid_metric_names_raise(name: object) -> None:
    with pytest.raises(InvalidMetricNameError):
        validate_name(name)


def test_valid_names_pass() -> None:
    for name in ("http_requests", "api:latency_ms", "_x", "A1", "http.server.duration", "a."):
        assert validate_name(name) == name


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "1", None])
def test_invalid_values_raise(value: object) -> None:
    with pytest.raises(InvalidValueError):
        validate_number(value)


@pytest.mark.parametrize("window", [0, -5, 1.5, True, "60", 10**9])
def test_invalid_windows_raise(window: object) -> None:
    with pytest.raises(InvalidValueError):
        validate_window(window)


def test_integral_float_window_is_accepted() -> None:
    assert validate_window(60.0) == 60
