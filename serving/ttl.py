"""Cache lifetimes: seconds, or the tiers ``short``, ``default`` and ``long``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

TTL_TIERS: Final[Mapping[str, int]] = {"short": 300, "default": 3600, "long": 86400}
"""Named TTLs in seconds, as docs/reference.md names them."""


def resolve_ttl(ttl: int | float | str) -> float:
    """Seconds for a TTL given as seconds or as a tier name; anything else is a ValueError."""
    if isinstance(ttl, str):
        try:
            return float(TTL_TIERS[ttl])
        except KeyError:
            raise ValueError(
                f"unknown TTL tier {ttl!r}: use 'short' (300 s), 'default' (3600 s), "
                "'long' (86400 s) or a positive number of seconds"
            ) from None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise ValueError(f"ttl must be a tier name or a number of seconds, not {ttl!r}")
    if not math.isfinite(ttl) or ttl < 0.001:
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return float(ttl)
