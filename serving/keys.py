"""Builders for the documented cache keys and invalidation tags, with every component escaped.

Keys follow the documented patterns (``metrics:daily:<type>:<id>:<date>`` ...). Components come
from users and entity ids, so each one is percent-encoded: ``:`` cannot forge extra segments,
whitespace cannot break tooling, and ``{``/``}`` cannot form a Redis Cluster hash tag that would
pin unrelated keys to one slot. ``*`` (the contract's "all") stays readable.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from urllib.parse import quote

__all__ = [
    "custom_key",
    "custom_tag",
    "daily_key",
    "dashboard_key",
    "encode_component",
    "entity_tag",
    "grain_tag",
    "key_prefix",
    "monthly_key",
    "period_tag",
    "user_tag",
    "weekly_key",
]

GRAINS = ("daily", "weekly", "monthly")

# Characters left as they are; everything else (":", "{", "}", "%", whitespace, "/", non-ASCII
# ...) is percent-encoded as UTF-8.
_SAFE = "-._~*@+="
_MAX_COMPONENT = 200
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=65536, typed=True)
def encode_component(value: str | int) -> str:
    """Percent-encode one key or tag component; rejects empty and overlong values."""
    text = str(value)
    if not text:
        raise ValueError("a cache key component cannot be empty")
    if len(text) > _MAX_COMPONENT:
        raise ValueError(f"a cache key component is limited to {_MAX_COMPONENT} characters")
    return quote(text, safe=_SAFE)


def _iso_date(value: date | str, what: str) -> str:
    """A date as YYYY-MM-DD; strings are validated, not trusted."""
    if isinstance(value, date):
        return value.isoformat()
    if not _DATE_RE.fullmatch(value):
        raise ValueError(f"{what} must be a date or 'YYYY-MM-DD', not {value!r}")
    return date.fromisoformat(value).isoformat()


def _join(*parts: str) -> str:
    return ":".join(parts)


def daily_key(entity_type: str, entity_id: str, day: date | str) -> str:
    """``metrics:daily:<type>:<id>:<date>``."""
    return _join(
        "metrics",
        "daily",
        encode_component(entity_type),
        encode_component(entity_id),
        _iso_date(day, "day"),
    )


def weekly_key(entity_type: str, entity_id: str, week_start: date | str) -> str:
    """``metrics:weekly:<type>:<id>:<weekStart>``."""
    return _join(
        "metrics",
        "weekly",
        encode_component(entity_type),
        encode_component(entity_id),
        _iso_date(week_start, "week_start"),
    )


def monthly_key(entity_type: str, entity_id: str, year: int, month: int) -> str:
    """``metrics:monthly:<type>:<id>:<year>-<month>`` (month zero-padded: ``2025-03``)."""
    if not 1 <= month <= 12 or not 1 <= year <= 9999:
        raise ValueError(f"invalid year/month {year}-{month}")
    return _join(
        "metrics",
        "monthly",
        encode_component(entity_type),
        encode_component(entity_id),
        f"{year:04d}-{month:02d}",
    )


def custom_key(definition_id: str | int, period_start: date | str, period_end: date | str) -> str:
    """``metrics:custom:<definitionId>:<periodStart>:<periodEnd>`` (half-open period)."""
    return _join(
        "metrics",
        "custom",
        encode_component(definition_id),
        _iso_date(period_start, "period_start"),
        _iso_date(period_end, "period_end"),
    )


def dashboard_key(
    user_id: str | int, dashboard_type: str, date_range: str, *qualifiers: str | int
) -> str:
    """``metrics:dashboard:<userId>:<type>:<dateRange>``, then any extra qualifier segments.

    The reader appends the entity id and the as-of day, which the documented pattern leaves out
    but without which two entities (or yesterday's window) would share one entry.
    """
    parts = [encode_component(user_id), encode_component(dashboard_type)]
    parts.append(encode_component(date_range))
    parts.extend(encode_component(q) for q in qualifiers)
    return _join("metrics", "dashboard", *parts)


def key_prefix(key: str) -> str:
    """The part of a key before its second ``:`` (``metrics:daily``), used to group statistics."""
    first = key.find(":")
    if first < 0:
        return key
    second = key.find(":", first + 1)
    return key if second < 0 else key[:second]


# Tags -------------------------------------------------------------------------------------------


def grain_tag(grain: str) -> str:
    """``grain:<grain>``: every entry built from that rollup (bumped by a full rebuild)."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
    return f"grain:{grain}"


def period_tag(grain: str, bucket: str, period: date | str) -> str:
    """``period:<grain>[-<bucket>]:<date>``: entries built from that period of that rollup.

    ``bucket`` is ``""`` for one period, or ``"week"``/``"month"`` for the coarser buckets that
    daily data is also tagged with (see `serving.invalidation`).
    """
    grain_tag(grain)
    if bucket not in ("", "week", "month"):
        raise ValueError(f"bucket must be '', 'week' or 'month', not {bucket!r}")
    name = f"{grain}-{bucket}" if bucket else grain
    return f"period:{name}:{_iso_date(period, 'period')}"


def entity_tag(entity_type: str, entity_id: str) -> str:
    """``entity:<type>:<id>``: every entry about that entity (or level, with ``*``)."""
    return f"entity:{encode_component(entity_type)}:{encode_component(entity_id)}"


def user_tag(user_id: str | int) -> str:
    """``user:<id>``: every entry built for that user."""
    return f"user:{encode_component(user_id)}"


def custom_tag(definition_id: str | int) -> str:
    """``custom:<definitionId>``: every cached value of that custom metric definition."""
    return f"custom:{encode_component(definition_id)}"
