"""Metric names and labels: validation and the canonical, order-insensitive text encoding.

A label set is encoded as ``k1=v1,k2=v2`` sorted by key, with ``% , = | { }`` in values
percent-escaped, so one label set always gives one Redis key and the text parses back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import unquote

MAX_NAME_LENGTH = 200
MAX_LABELS = 16
MAX_LABEL_KEY_LENGTH = 128
MAX_LABEL_VALUE_LENGTH = 128

# Prometheus' rules for metric names plus the dot of OpenTelemetry's (``http.server.duration``);
# the export translates dots (realtime.names.exported_name). Label names follow Prometheus.
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:.]*\Z")
_LABEL_KEY_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
# The label of a metric's overflow series (realtime.cardinality), as OpenTelemetry names it; a
# label set may hold it only as the whole set {"otel_metric_overflow": "true"}.
OVERFLOW_LABEL = "otel_metric_overflow"
OVERFLOW_LABELS = f"{OVERFLOW_LABEL}=true"
# Label names the Prometheus exposition and the cardinality limit add themselves.
RESERVED_LABEL_KEYS = frozenset({"quantile", "le", "window", OVERFLOW_LABEL})
_ESCAPES = str.maketrans({"%": "%25", ",": "%2C", "=": "%3D", "|": "%7C", "{": "%7B", "}": "%7D"})


class RealtimeValidationError(ValueError):
    """A metric name, label set or value that `realtime` does not accept."""


class InvalidMetricNameError(RealtimeValidationError):
    """The metric name is empty, too long or has characters outside ``[a-zA-Z0-9_:.]``."""


class InvalidLabelsError(RealtimeValidationError):
    """The label set has too many labels, a bad key, or a bad value."""


class InvalidValueError(RealtimeValidationError):
    """A metric value that is not a finite number (or a window that is not a whole second)."""


def validate_name(name: object) -> str:
    """Return `name` if it is a valid metric name, else raise InvalidMetricNameError."""
    if not isinstance(name, str) or not name:
        raise InvalidMetricNameError(f"metric name must be a non-empty string, not {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidMetricNameError(
            f"metric name is {len(name)} characters long, at most {MAX_NAME_LENGTH} allowed"
        )
    if not _NAME_RE.match(name):
        raise InvalidMetricNameError(
            f"metric name {name!r} must match [a-zA-Z_:][a-zA-Z0-9_:.]* (letters, digits, _, : "
            "and ., not first a digit or a dot)"
        )
    return name


def _validate_label(key: object, value: object) -> tuple[str, str]:
    if not isinstance(key, str) or not _LABEL_KEY_RE.match(key):
        raise InvalidLabelsError(f"label name {key!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
    if len(key) > MAX_LABEL_KEY_LENGTH:
        raise InvalidLabelsError(
            f"label name {key[:20]!r}... is longer than {MAX_LABEL_KEY_LENGTH} characters"
        )
    if key.startswith("__") or key in RESERVED_LABEL_KEYS:
        raise InvalidLabelsError(f"label name {key!r} is reserved")
    if not isinstance(value, str):
        raise InvalidLabelsError(
            f"label {key!r} has a value of type {type(value).__name__}; values must be str"
        )
    if not value:
        raise InvalidLabelsError(f"label {key!r} has an empty value; omit the label instead")
    if len(value) > MAX_LABEL_VALUE_LENGTH:
        raise InvalidLabelsError(
            f"label {key!r} has a value longer than {MAX_LABEL_VALUE_LENGTH} characters"
        )
    if not value.isprintable():
        raise InvalidLabelsError(f"label {key!r} has a value with control characters")
    return key, value


def canonical_labels(labels: Mapping[str, str] | None) -> str:
    """Validate `labels` and encode them canonically (sorted by key); ``""`` for none."""
    if labels is None:
        return ""
    if not isinstance(labels, Mapping):
        raise InvalidLabelsError(f"labels must be a mapping of str to str, not {labels!r}")
    if len(labels) == 1 and labels.get(OVERFLOW_LABEL) == "true":
        return OVERFLOW_LABELS  # the overflow series, to read it
    if len(labels) > MAX_LABELS:
        raise InvalidLabelsError(f"{len(labels)} labels given, at most {MAX_LABELS} allowed")
    pairs = sorted(_validate_label(key, value) for key, value in labels.items())
    return ",".join(f"{key}={value.translate(_ESCAPES)}" for key, value in pairs)


def parse_labels(text: str) -> dict[str, str]:
    """Decode a canonical label text back into a dict (inverse of `canonical_labels`)."""
    if not text:
        return {}
    result: dict[str, str] = {}
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        result[key] = unquote(value)
    return result


MAX_MEMBER_LENGTH = 1024
# The label a top-k's items get in the Prometheus export; a top-k's own labels may not use it.
TOP_ITEM_LABEL = "item"


def validate_member(member: object) -> str:
    """A unique count's member: a non-empty str of at most `MAX_MEMBER_LENGTH` characters, or
    an int (counted as its decimal text)."""
    if member.__class__ is int:
        return str(member)
    if not isinstance(member, str) or not member or len(member) > MAX_MEMBER_LENGTH:
        raise InvalidValueError(
            f"member must be an int or a non-empty str of at most {MAX_MEMBER_LENGTH} "
            f"characters, not {member!r:.60}"
        )
    return member


def validate_item(item: object) -> str:
    """A top-k item: it becomes a label value in the export, so a label value's rules."""
    if not isinstance(item, str):
        raise InvalidValueError(f"item must be a str, not {item!r:.60}")
    try:
        return _validate_label(TOP_ITEM_LABEL, item)[1]
    except InvalidLabelsError as error:
        raise InvalidValueError(str(error).replace("label 'item' has", "item has")) from None


def validate_top_labels(canonical: str) -> None:
    """A top-k's own labels may not use the label its items are exported under."""
    if (
        canonical == TOP_ITEM_LABEL
        or canonical.startswith(f"{TOP_ITEM_LABEL}=")
        or (f",{TOP_ITEM_LABEL}=" in canonical)
    ):
        raise InvalidLabelsError(
            f"label name {TOP_ITEM_LABEL!r} is reserved on a top-k: its items are exported under it"
        )


MAX_MAGNITUDE = 2**53
"""The largest magnitude a value may have: every whole number up to it is exact in Redis and
in the warehouse backup (double precision), so nothing written is silently rounded."""


def validate_number(value: object, what: str = "value") -> int | float:
    """Return `value` if it is a finite int or float (not bool) of magnitude at most
    `MAX_MAGNITUDE`, else raise InvalidValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValueError(f"{what} must be an int or float, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValueError(f"{what} must be finite, not {value!r}")
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        raise InvalidValueError(out_of_range(what, value))
    return value


def out_of_range(what: str, value: int | float) -> str:
    """The message for a number beyond `MAX_MAGNITUDE`."""
    if isinstance(value, float):
        shown = f"{value:.3g}"
    elif abs(value) > 10**30:  # about 10**N, without printing thousands of digits
        shown = f"{'-' if value < 0 else ''}~10**{int((abs(value).bit_length() - 1) * 0.30103)}"
    else:
        shown = str(value)
    return (
        f"{what} {shown} is beyond +/-2**53 ({MAX_MAGNITUDE:,}), the largest magnitude Redis and "
        "the warehouse backup store exactly; split it or scale it down"
    )


MAX_WINDOW_SECONDS = 31 * 24 * 3600


def validate_window(window_seconds: object) -> int:
    """Return the window as whole seconds in [1, 31 days], else raise InvalidValueError."""
    if isinstance(window_seconds, float) and window_seconds.is_integer():
        window_seconds = int(window_seconds)
    if (
        isinstance(window_seconds, bool)
        or not isinstance(window_seconds, int)
        or not 1 <= window_seconds <= MAX_WINDOW_SECONDS
    ):
        raise InvalidValueError(
            f"window_seconds must be a whole number of seconds in [1, {MAX_WINDOW_SECONDS}], "
            f"not {window_seconds!r}"
        )
    return window_seconds
