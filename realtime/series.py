"""The key layout: one series (kind, name, labels, window) and the Redis keys it owns.

Every key of a series starts with ``{prefix}{<kind>:<name>|<labels>}``; the braces are a Redis
Cluster hash tag, so all keys of one series (total, hour buckets, time slots, markers) live in
one slot and a Lua script may touch them together, while different series spread over slots.

    counter    P{c:name|labels}        string: the total                           idle TTL
               P{c:name|labels}:h      hash: UTC hour -> increments (reconcile)    counter_hours
               P{c:name|labels}:b      "backed up" sentinel (restore)              idle TTL
    gauge      P{g:name|labels}        hash: v (value), u (unit)                   idle TTL
    histogram  P{h:name|labels}:W:<i>  hash per time slot i: s (sum), lo, hi       W + slot
                                       (exact min/max), sketch bucket -> count
    rate       P{r:name|labels}:W:<i>  string per time slot i: event count         W + slot
    unique     P{u:name|labels}:W:<i>  HyperLogLog per time slot i: the members    W + slot
    top        P{t:name|labels}:W:<i>  sorted set per time slot i: item -> count,  W + slot
                                       at most TOP_CAPACITY items (Space-Saving)
    any        <series key>:m          registry marker                             refresh
    registry   P{registry}:<kind>      sorted set: series -> last registration     see Settings

Nothing grows without bound: window keys expire one window after their slot ends; counters
and gauges expire `idle_ttl` after they stop being written (refreshed on creation and then
hourly, not on every write, to keep writes cheap); hour buckets keep `counter_hours` hours;
the registry is pruned by `realtime.registry.cleanup` and expires when nothing writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram", "rate", "unique", "top"]
KINDS: tuple[Kind, ...] = ("counter", "gauge", "histogram", "rate", "unique", "top")
_CODES: dict[str, str] = {
    "counter": "c",
    "gauge": "g",
    "histogram": "h",
    "rate": "r",
    "unique": "u",
    "top": "t",
}

# About 30 slots per window: fine enough to slide smoothly, few enough to read in one script.
SLOTS_PER_WINDOW = 30

# Items a top-k keeps per time slot: memory stays bounded (about 30 x 200 items per series) and
# items far above the rest are counted exactly; get_top's k is at most half of it.
TOP_CAPACITY = 200
MAX_TOP_K = TOP_CAPACITY // 2


def slot_seconds(window_seconds: int) -> int:
    """Width of one time slot for a window (whole seconds, at least 1)."""
    return max(1, window_seconds // SLOTS_PER_WINDOW)


def validate_prefix(prefix: str) -> str:
    """A key prefix must not contain braces: they would change the hash tag."""
    if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
        raise ValueError(f"key prefix must be a string without braces, not {prefix!r}")
    return prefix


@dataclass(frozen=True, slots=True)
class Series:
    """One time series: what it is and where its keys are."""

    kind: Kind
    name: str
    labels: str  # canonical label text, see realtime.labels
    window: int = 0  # seconds; windowed kinds only (histogram, rate, unique, top)

    def key(self, prefix: str) -> str:
        """The series' main key (counter/gauge) or the base of its slot keys (windows)."""
        base = f"{prefix}{{{_CODES[self.kind]}:{self.name}|{self.labels}}}"
        return f"{base}:{self.window}" if self.window else base

    @property
    def member(self) -> str:
        """How the series is named in the registry: ``name|labels`` or ``name|labels|window``."""
        if self.window:
            return f"{self.name}|{self.labels}|{self.window}"
        return f"{self.name}|{self.labels}"

    @classmethod
    def from_member(cls, kind: Kind, member: str) -> Series:
        """Inverse of `member`."""
        parts = member.split("|")
        window = int(parts[2]) if len(parts) > 2 else 0
        return cls(kind=kind, name=parts[0], labels=parts[1], window=window)

    @property
    def slot(self) -> int:
        return slot_seconds(self.window)


def registry_key(prefix: str, kind: Kind) -> str:
    """The sorted set that lists the live series of one kind (instead of KEYS/SCAN)."""
    return f"{prefix}{{registry}}:{kind}"
