"""The server-side Lua scripts (realtime/lua/*.lua), assembled for one set of `Settings`.

Each script is: the settings' constants (IDLE, HOURS, REFRESH, SLOTS, the sketch's and the
top-k's TOP_CAPACITY), the
prelude of _common.lua, those of its helper functions (_common.lua, _writes.lua) that the
script uses, then the script's own file. Baking the constants in keeps every write down to its
one or two real arguments, and leaving unused helpers out saves creating their closures on
every call. Every write is one EVALSHA of one of these; they read "now" from Redis TIME, so app
servers with skewed clocks agree on time slots.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from realtime.series import SLOTS_PER_WINDOW, TOP_CAPACITY
from realtime.sketch import LOG_GAMMA, MIN_INDEXABLE

SCRIPT_NAMES = (
    "batch",
    "counter_incr",
    "counter_adjust",
    "gauge_set",
    "histogram_add",
    "histogram_read",
    "rate_track",
    "rate_read",
    "unique_add",
    "unique_read",
    "top_add",
    "top_read",
    "restore",
    "claim_series",
)


@cache
def _read(name: str) -> str:
    return resources.files("realtime").joinpath("lua", f"{name}.lua").read_text("utf-8")


_FUNCTION = re.compile(r"^local function (\w+)\(", re.MULTILINE)


@cache
def _helpers() -> tuple[str, tuple[tuple[str, str], ...]]:
    """The prelude (code before the first helper) and each helper function as (name, source),
    in file order, each with the comment lines just above it."""
    text = _read("_common") + "\n" + _read("_writes")
    starts = [match.start() for match in _FUNCTION.finditer(text)]
    # Move each start back over the comment lines that document the function.
    cuts = []
    for start in starts:
        cut = start
        while True:
            previous = text.rfind("\n", 0, cut - 1) + 1
            if cut > 0 and text[previous:cut].startswith("--"):
                cut = previous
            else:
                break
        cuts.append(cut)
    prelude = text[: cuts[0]]
    bounds = [*cuts[1:], len(text)]
    chunks = tuple(
        (_FUNCTION.search(text, start).group(1), text[cut:end])  # type: ignore[union-attr]
        for start, cut, end in zip(starts, cuts, bounds, strict=True)
    )
    return prelude, chunks


def _used_helpers(body: str) -> str:
    """Source of the helpers `body` needs, directly or through other helpers, in file order."""
    prelude, chunks = _helpers()
    needed: set[str] = set()
    pending = [body]
    while pending:
        text = pending.pop()
        for name, source in chunks:
            if name not in needed and re.search(rf"\b{name}\b", text):
                needed.add(name)
                pending.append(source)
    return prelude + "".join(source for name, source in chunks if name in needed)


def script_source(name: str, idle_ttl: int, counter_hours: int, registry_refresh: int) -> str:
    """Full source of one script for the given settings (see realtime.operations.Settings)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"unknown realtime script {name!r}")
    constants = (
        f"local IDLE, HOURS, REFRESH, SLOTS = {int(idle_ttl)}, {int(counter_hours)}, "
        f"{int(registry_refresh)}, {SLOTS_PER_WINDOW}\n"
        f"local LOG_GAMMA, MIN_INDEXABLE = {LOG_GAMMA!r}, {MIN_INDEXABLE!r}\n"
        f"local TOP_CAPACITY = {TOP_CAPACITY}\n"
    )
    body = _read(name)
    return constants + _used_helpers(body) + "\n" + body
