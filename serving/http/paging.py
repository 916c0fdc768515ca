"""Opaque keyset cursors: the last row's key, bound to the query's filters.

Pages are ordered by the table's key and each page starts strictly after the previous page's
last key, so every row appears exactly once across pages, and rows inserted meanwhile (a new
period built between two requests) neither shift nor repeat what was already read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from serving.http.problems import Problem


def fingerprint(parts: Sequence[Any]) -> str:
    """A short digest of what a cursor belongs to (endpoint and filters)."""
    return hashlib.sha256(orjson.dumps(list(parts))).hexdigest()[:16]


def encode_cursor(key: Sequence[str], bound_to: str) -> str:
    """A URL-safe cursor after `key` (the key's values as text)."""
    raw = orjson.dumps({"after": list(key), "for": bound_to})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, bound_to: str, width: int) -> list[str]:
    """The key a cursor continues after; 422 naming `cursor` when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
        owner = data["for"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise Problem(422, "cursor: not a cursor this API returned", field="cursor") from None
    if owner != bound_to:
        raise Problem(
            422,
            "cursor: it belongs to another query; repeat the same filters to continue",
            field="cursor",
        )
    if (
        not isinstance(after, list)
        or len(after) != width
        or not all(isinstance(v, str) for v in after)
    ):
        raise Problem(422, "cursor: not a cursor this API returned", field="cursor")
    return after
