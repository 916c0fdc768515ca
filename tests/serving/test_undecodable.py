"""A cache hit that cannot be decoded is a counted miss, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from serving import MetricsCache
from serving.serialization import SerializationError, UndecodableError, loads

BERLIN = Path("/usr/share/zoneinfo/Europe/Berlin")

PLANTED = {
    "unknown zone": b'{"at":{"$datetime":"2025-03-04T10:00:00+01:00","$tz":"Custom/Zone"}}',
    "bad decimal (InvalidOperation)": b'{"$decimal":"12abc"}',
    "bad date type (TypeError)": b'{"$date":5}',
    "deep nesting (RecursionError)": b"[" * 100_000 + b"1E1" + b"]" * 100_000,
    "deep plain nesting": b"[" * 100_000 + b"]" * 100_000,
    "not json": b"{not json",
    "bad int marker": b'{"$int":"x"}',
    "bad datetime text": b'{"$datetime":"yesterday"}',
}


def _plant(cache: MetricsCache, raw_redis: redis.Redis, key: str, body: bytes) -> None:
    """Replace a valid entry's JSON with ``body``, keeping its (valid) header."""
    cache.get_or_compute(key, lambda: "seed")
    header, _, _ = raw_redis.get(cache.entry_key(key)).partition(b"\n")
    raw_redis.set(cache.entry_key(key), header + b"\n" + body, px=60_000)


@pytest.mark.parametrize("what", sorted(PLANTED))
def test_planted_entry_is_a_counted_miss(
    cache: MetricsCache, raw_redis: redis.Redis, what: str
) -> None:
    _plant(cache, raw_redis, "k:planted", PLANTED[what])
    cache.reset_stats()
    assert cache.get_or_compute("k:planted", lambda: "fresh") == "fresh"
    stats = cache.get_stats()
    assert (stats["hits"], stats["misses"], stats["undecodable"]) == (0, 1, 1)
    assert cache.get_or_compute("k:planted", lambda: "again") == "fresh"  # rewritten: a hit
    with pytest.raises(UndecodableError):
        loads(PLANTED[what])


def test_planted_entry_as_json_bytes_is_served_as_stored(
    cache: MetricsCache, raw_redis: redis.Redis
) -> None:
    """Undecoded reads hand the bytes on unread, as they always did."""
    _plant(cache, raw_redis, "k:bytes", b'{"$decimal":"12abc"}')
    assert cache.get_or_compute_json("k:bytes", lambda: "fresh") == b'{"$decimal":"12abc"}'


@pytest.mark.skipif(not BERLIN.exists(), reason="no system zoneinfo")
def test_a_zone_that_cannot_be_loaded_again_is_refused_when_written(
    cache: MetricsCache,
) -> None:
    with BERLIN.open("rb") as file:
        custom = ZoneInfo.from_file(file, key="Custom/Berlin")
    value = datetime(2025, 3, 4, 10, tzinfo=custom)
    with pytest.raises(SerializationError, match="Custom/Berlin"):
        cache.get_or_compute("k:zone", lambda: {"at": value})
    berlin = datetime(2025, 3, 4, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert cache.get_or_compute("k:zone", lambda: {"at": berlin}) == {"at": berlin}
    assert cache.get_or_compute("k:zone", lambda: None) == {"at": berlin}
    assert cache.get_or_compute("k:utc", lambda: datetime(2025, 1, 1, tzinfo=UTC)).tzinfo is UTC
