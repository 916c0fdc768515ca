"""JSON for cached values that round-trips date, datetime, time and Decimal exactly; never pickle.

A finite Decimal is a JSON number in scientific notation with a capital ``E`` and its exact
digits (``Decimal("12.50")`` is ``1250E-2``), a form Python's float repr never produces
(lower-case ``e``), so the decoder's number hook tells the two apart without a marker object:
any JSON reader sees a number, and decoding one costs a Decimal() call, not a dict and a hook.
Other special values become small marker objects (``{"$date": "2025-03-04"}``; NaN and infinite
Decimals ``{"$decimal": "NaN"}``, the form every Decimal had before; integers beyond 64 bits
``{"$int": "..."}``, since plain entries are decoded by orjson, which reads those as floats).
A user dict key that starts with ``$`` is escaped with one more ``$`` (``"$x"`` is stored as
``"$$x"``), so a marker can never be confused with user data. Tuples come back as lists; dict
keys must be strings (JSON would silently stringify others). A zoned datetime keeps its IANA
zone name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson

__all__ = [
    "SerializationError",
    "UndecodableError",
    "copier",
    "dumps",
    "loads",
    "loads_plain",
    "needs_hooks",
]


class SerializationError(TypeError):
    """A value the cache cannot store faithfully (an unknown type or a non-string dict key)."""


class UndecodableError(ValueError):
    """Bytes that are not a value `dumps` wrote (corrupt, planted, or an unknown time zone)."""


# What decoding bad bytes can raise: malformed JSON or ISO text (ValueError), an unknown zone
# (ZoneInfoNotFoundError, a KeyError), a bad Decimal (InvalidOperation, an ArithmeticError), a
# marker of the wrong type (TypeError, AttributeError), too deep a nesting (RecursionError).
_DECODE_ERRORS = (ValueError, KeyError, ArithmeticError, TypeError, AttributeError, RecursionError)


@lru_cache(maxsize=256)
def _loadable_zone(key: str | None) -> bool:
    """Whether ZoneInfo(key) finds the zone again when the value is read back."""
    if not key:
        return False
    try:
        ZoneInfo(key)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return False
    return True


def _to_jsonable(value: Any) -> Any:
    """Convert a value tree into plain JSON types with markers for the special ones."""
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        # orjson (the decoder of plain entries) reads integers beyond 64 bits as floats.
        return value if _INT64_MIN <= value <= _INT64_MAX else {"$int": str(value)}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(
                    f"cache values need string dict keys; got {type(key).__name__} {key!r}"
                )
            out["$" + key if key.startswith("$") else key] = _to_jsonable(item)
        return out
    if isinstance(value, list | tuple):
        return [_to_jsonable(item) for item in value]
    if isinstance(value, datetime):  # before date: datetime is a date subclass
        if isinstance(value.tzinfo, ZoneInfo):
            # Keep the zone name, not only its offset, so the value comes back identical.
            if not _loadable_zone(value.tzinfo.key):
                raise SerializationError(
                    f"cannot cache a datetime in time zone {value.tzinfo.key!r}: it is not an "
                    "IANA zone this machine can load again; convert it to one, or to UTC"
                )
            return {"$datetime": value.isoformat(), "$tz": value.tzinfo.key}
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, Decimal):
        if value.is_finite():  # marker turned into a bare number by `dumps`
            sign, digits, exponent = value.as_tuple()
            return {"$decimal": f"{'-' if sign else ''}{''.join(map(str, digits))}E{exponent}"}
        return {"$decimal": str(value)}
    raise SerializationError(
        f"cannot cache a value of type {type(value).__name__}: only JSON types, date, "
        "datetime, time and Decimal (in lists and string-keyed dicts) round-trip"
    )


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# A finite Decimal's marker as json.dumps writes it. It cannot occur inside a JSON string (whose
# quotes are escaped) nor come from user data (user keys starting with "$" are escaped), so
# replacing it with the bare number is safe.
_DECIMAL_MARKER = re.compile(r'\{"\$decimal":"(-?[0-9]+E-?[0-9]+)"\}')


def _number(text: str) -> float | Decimal:
    """json's parse_float hook: capital-E numbers are Decimals (see the module docstring)."""
    return Decimal(text) if "E" in text else float(text)


def _object_hook(obj: dict[str, Any]) -> Any:
    """Turn marker objects back into their Python values (called by json for every object)."""
    if len(obj) > 2:
        return obj
    if "$date" in obj:
        return date.fromisoformat(obj["$date"])
    if "$decimal" in obj:
        return Decimal(obj["$decimal"])
    if "$int" in obj:
        return int(obj["$int"])
    if "$datetime" in obj:
        parsed = datetime.fromisoformat(obj["$datetime"])
        zone = obj.get("$tz")
        return parsed.astimezone(ZoneInfo(zone)) if zone else parsed
    if "$time" in obj:
        return time.fromisoformat(obj["$time"])
    return obj


def _object_hook_escaped(obj: dict[str, Any]) -> Any:
    """As `_object_hook`, and also unescape user keys that were stored with a doubled ``$``."""
    if any(key.startswith("$$") for key in obj):
        return {key[1:] if key.startswith("$$") else key: item for key, item in obj.items()}
    return _object_hook(obj)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; raises SerializationError for what would not round-trip."""
    text = json.dumps(
        _to_jsonable(value), separators=(",", ":"), ensure_ascii=False, allow_nan=True
    )
    if '{"$decimal":"' in text:
        text = _DECIMAL_MARKER.sub(r"\1", text)
    return text.encode("utf-8")


def needs_hooks(raw: bytes) -> bool:
    """Whether decoding `raw` needs the Python hooks (Decimals, markers), not orjson alone.

    The one-byte searches run first: they are memchr, while ``'"$'`` is searched for at
    every quote of the JSON (about 2 us on a 2.4 kB dashboard bundle against 0.1 us)."""
    return b"E" in raw or (b"$" in raw and b'"$' in raw)


def loads_plain(raw: bytes) -> Any:
    """Decode JSON that needs no hooks (see `needs_hooks`): orjson, or json for NaN/Infinity.
    Raises UndecodableError for anything else."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except _DECODE_ERRORS as error:
        raise UndecodableError(f"undecodable cache value: {error!r}") from error


def loads(data: bytes | str) -> Any:
    """Decode what `dumps` wrote; plain JSON (no markers, no Decimals) goes to orjson.
    Raises UndecodableError (a ValueError) for bytes `dumps` did not write."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not needs_hooks(raw):
        return loads_plain(raw)
    hook = None
    if b'"$' in raw:
        hook = _object_hook_escaped if b'"$$' in raw else _object_hook
    try:
        return json.loads(raw, object_hook=hook, parse_float=_number if b"E" in raw else None)
    except _DECODE_ERRORS as error:
        raise UndecodableError(f"undecodable cache value: {error!r}") from error


def copier(value: Any) -> Callable[[], Any]:
    """A function returning copies of a decoded value that share nothing mutable with it (new
    dicts and lists, the same immutable leaves), for a value nobody mutates (the memo's).

    Which containers hold containers is worked out once, here, so a copy is mostly C-level
    ``dict.copy`` and ``list.copy``: a dashboard bundle copies in about a quarter of the time
    orjson takes to decode it. Raises RecursionError for values nested too deep to plan.
    """
    copy = _copy_plan(value)
    return partial(copy, value)


def _copy_plan(value: Any) -> Callable[[Any], Any]:
    """How to copy ``value`` (and only it): a function of it returning the copy."""
    kind = value.__class__
    if kind is dict:
        nested = [
            (key, _copy_plan(item)) for key, item in value.items() if item.__class__ in _CONTAINERS
        ]
        if not nested:
            return _COPY_DICT
        return partial(_copy_dict, nested)
    if kind is list:
        plans = [_copy_plan(item) if item.__class__ in _CONTAINERS else None for item in value]
        if not any(plans):
            return _COPY_LIST
        if all(plan is _COPY_DICT for plan in plans):  # rows: a list of flat dicts
            return _copy_rows
        return partial(_copy_list, plans)
    return _same


def _copy_dict(nested: list[tuple[str, Callable[[Any], Any]]], value: dict[str, Any]) -> Any:
    out = value.copy()
    for key, copy in nested:
        out[key] = copy(value[key])
    return out


def _copy_list(plans: list[Callable[[Any], Any] | None], value: list[Any]) -> Any:
    return [item if plan is None else plan(item) for item, plan in zip(value, plans, strict=True)]


def _copy_rows(value: list[dict[str, Any]]) -> Any:
    return [row.copy() for row in value]


def _same(value: Any) -> Any:
    return value


_COPY_DICT: Final = dict.copy
_COPY_LIST: Final = list.copy
_CONTAINERS: Final = frozenset({dict, list})
