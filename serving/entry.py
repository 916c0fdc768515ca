"""The bytes of one cache entry: a header line saying what keeps it valid, then its JSON.

``c2 <expires_ms> <generation>,<tag version>... <tag> <tag>...\\n<json>``: the logical expiry
(after it the entry is stale), the namespace generation and the versions of the entry's own
tags when its computation started, and the tags, sorted. The hit script (serving/lua/hit.lua)
compares the versions with the current ones inside Redis, so a valid entry comes back in one
round trip whatever tags the reader passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

FORMAT: Final = b"c2"


def encode(expires_ms: int, versions: Sequence[bytes], tags_blob: bytes, payload: bytes) -> bytes:
    """An entry for ``payload`` (JSON) valid while ``versions`` are current."""
    header = b"%s %d %s" % (FORMAT, expires_ms, b",".join(versions))
    if tags_blob:
        header += b" " + tags_blob
    return header + b"\n" + payload


def split(raw: bytes) -> tuple[int, bytes] | None:
    """The logical expiry (ms since the epoch) and JSON body of an entry; None if malformed."""
    header, newline, body = raw.partition(b"\n")
    parts = header.split(b" ", 2)
    if not newline or len(parts) < 3 or parts[0] != FORMAT:
        return None
    try:
        return int(parts[1]), body
    except ValueError:
        return None
