"""Cleanup of the series registry: forget series whose keys have expired.

The registry (one sorted set per kind, see `realtime.series`) is how backup and export find
series without KEYS. A series registers itself when it is created and again periodically
(counters with each new hour bucket, the others when their registry marker, which lives
`registry_refresh` seconds, is renewed); the write script tells the client when, so this costs
one extra round trip per series per period, not per write. An entry is stale when its keys are
gone:

- counters and gauges: the main key no longer exists (idle TTL passed, or deleted);
- windowed kinds (histograms, rates, unique counts, top-k): the last registration is older
  than refresh + window + one slot, so every time-slot key written since has expired.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from realtime.cardinality import label_sets_key
from realtime.names import names_key, owner_of
from realtime.operations import reply_text
from realtime.series import KINDS, Series, registry_key

if TYPE_CHECKING:
    from realtime.metrics import RealtimeMetrics

CHUNK = 1000


def cleanup(rt: RealtimeMetrics) -> dict[str, int]:
    """Remove registry entries of expired series; returns how many were removed per kind.

    Safe to run at any time (e.g. daily): a counter or gauge re-created while cleanup runs is
    put back; a window series written again re-registers within one refresh interval. The
    exported names of metrics left with no series are released.
    """
    removed: dict[str, int] = {}
    now = redis_now(rt)
    refresh = rt.settings.registry_refresh
    for kind in KINDS:
        entries = rt.series_of(kind)
        stale: list[Series] = []
        if kind in ("counter", "gauge"):
            keys = [("EXISTS", rt.ops.key(series)) for series, _ in entries]
            exists = rt.execute_commands(keys)
            stale = [s for (s, _), alive in zip(entries, exists, strict=True) if not alive]
        else:
            stale = [
                series
                for series, registered_at in entries
                if registered_at < now - (refresh + series.window + series.slot + 1)
            ]
        key = registry_key(rt.settings.prefix, kind)
        for start in range(0, len(stale), CHUNK):
            rt.client.zrem(key, *(s.member for s in stale[start : start + CHUNK]))
        if kind in ("counter", "gauge") and stale:
            # A series (re)created between the EXISTS and the ZREM registered itself and was
            # just removed: look again and put back what exists now.
            exists = rt.execute_commands([("EXISTS", rt.ops.key(series)) for series in stale])
            back = [
                (series, int(now)) for series, alive in zip(stale, exists, strict=True) if alive
            ]
            rt.register(back)
            stale = [series for series, alive in zip(stale, exists, strict=True) if not alive]
        removed[kind] = len(stale)
    _forget_names(rt)
    return removed


def _forget_names(rt: RealtimeMetrics) -> None:
    """Release the exported names (realtime.names) of metrics that have no series left, so
    the names may be used again, and the label sets (realtime.cardinality) whose series are
    gone, so they no longer count against their metric's limit."""
    live: dict[str, set[str]] = {}
    for kind in KINDS:
        for series, _ in rt.series_of(kind):
            live.setdefault(owner_of(series), set()).add(series.labels)
    key = names_key(rt.settings.prefix)
    owners = {reply_text(k): reply_text(v) for k, v in rt.client.hgetall(key).items()}
    gone = [sample for sample, owner in owners.items() if owner not in live]
    if gone:
        rt.client.hdel(key, *gone)
    for owner in set(owners.values()):
        sets = label_sets_key(key, owner)
        if owner not in live:
            rt.client.delete(sets)
            continue
        stale = [
            text for text in map(reply_text, rt.client.smembers(sets)) if text not in live[owner]
        ]
        for start in range(0, len(stale), CHUNK):
            rt.client.srem(sets, *stale[start : start + CHUNK])


def redis_now(rt: RealtimeMetrics) -> float:
    """Redis' clock, the one registrations and time slots are stamped with."""
    seconds, micros = rt.client.time()
    return float(seconds) + float(micros) / 1_000_000
