"""Test helper: an entry that is logically expired but still in Redis, without waiting for it."""

from __future__ import annotations

import redis
import redis.cluster


def expire_logically(client: redis.Redis | redis.cluster.RedisCluster, entry_key: str) -> None:
    """Set the entry's logical expiry to 1970, keeping its body and its Redis TTL: expired, and
    inside its stale grace for as long as that TTL lasts (a sleep past a 1 s TTL left 1 s)."""
    raw = client.get(entry_key)
    assert isinstance(raw, bytes), raw
    header, _, body = raw.partition(b"\n")
    fields = header.split(b" ")
    fields[1] = b"1000"
    client.set(entry_key, b" ".join(fields) + b"\n" + body, keepttl=True)
