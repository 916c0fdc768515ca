"""JSON for cached values that round-trips date, datetime, time and Decimal exactly; never pickle.

Special values become small marker objects (``{"$date": "2025-03-04"}``). A user dict key that
starts with ``$`` is escaped with one more ``$`` (``"$x"`` is stored as ``"$$x"``), so a marker
can never be confused with user data. Tuples come back as lists; dict keys must be strings
(JSON would silently stringify others). A zoned datetime keeps its IANA zone name.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["SerializationError", "dumps", "loads"]


class SerializationError(TypeError):
    """A value the cache cannot store faithfully (an unknown type or a non-string dict key)."""


def _to_jsonable(value: Any) -> Any:
    """Convert a value tree into plain JSON types with markers for the special ones."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
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
            return {"$datetime": value.isoformat(), "$tz": value.tzinfo.key}
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    raise SerializationError(
        f"cannot cache a value of type {type(value).__name__}: only JSON types, date, "
        "datetime, time and Decimal (in lists and string-keyed dicts) round-trip"
    )


def _object_hook(obj: dict[str, Any]) -> Any:
    """Turn marker objects back into their Python values (called by json for every object)."""
    if len(obj) > 2:
        return obj
    if "$date" in obj:
        return date.fromisoformat(obj["$date"])
    if "$decimal" in obj:
        return Decimal(obj["$decimal"])
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
    return json.dumps(
        _to_jsonable(value), separators=(",", ":"), ensure_ascii=False, allow_nan=True
    ).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Decode what `dumps` wrote; plain JSON without markers takes the fast C-only path."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if b'"$' not in raw:
        return json.loads(raw)
    if b'"$$' in raw:
        return json.loads(raw, object_hook=_object_hook_escaped)
    return json.loads(raw, object_hook=_object_hook)
