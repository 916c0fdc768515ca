"""The bytes of one cache entry: a header line saying what keeps it valid, then its JSON.

``c2 <expires_ms> <generation>,<tag version>... <tag> <tag>...\\n<json>``: the logical expiry
(after it the entry is stale), the namespace generation and the versions of the entry's own
tags when its computation started, and the tags, sorted. The entry is valid only while those
versions are all current (serving/cache.py checks them by the tags in the header), so a valid
entry is found whatever tags the reader passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple, cast

FORMAT: Final = b"c2"


class Header(NamedTuple):
    """An entry's header fields as stored (the expiry is parsed only once the entry is valid)."""

    expires: bytes
    versions: bytes
    tags: bytes
    body_start: int


def encode(expires_ms: int, versions: Sequence[bytes], tags_blob: bytes, payload: bytes) -> bytes:
    """An entry for ``payload`` (JSON) valid while ``versions`` are current."""
    header = b"%s %d %s" % (FORMAT, expires_ms, b",".join(versions))
    if tags_blob:
        header += b" " + tags_blob
    return header + b"\n" + payload


def header(raw: bytes) -> Header | None:
    """The header of an entry; None if it is not one (wrong format, no versions, no newline)."""
    end = raw.find(b"\n")
    if end < 0:
        return None
    parts = raw[:end].split(b" ", 3)
    if len(parts) < 3 or parts[0] != FORMAT:
        return None
    return Header(parts[1], parts[2], parts[3] if len(parts) == 4 else b"", end + 1)


def current(versions: bytes, found: Sequence[bytes | None]) -> bool:
    """Whether an entry's stored ``versions`` equal the ``found`` ones (None: a missing key)."""
    if None in found:
        return False
    return b",".join(cast("Sequence[bytes]", found)) == versions
