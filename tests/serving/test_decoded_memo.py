"""DecodedMemo: repeated hits of an unchanged entry skip decoding, never serve a changed one,
hand out values callers may mutate freely, and stay within their byte budget."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from serving.memo import DecodedMemo
from serving.serialization import dumps

VALUE = {"rows": [{"week": date(2025, 1, 6), "avg": Decimal("176.285714")}], "n": 3}


def test_a_repeated_hit_returns_an_equal_independent_value() -> None:
    memo = DecodedMemo()
    body = dumps(VALUE)
    first = memo.loads("k", body)
    first["rows"][0]["avg"] = None  # a caller mutating its value
    second = memo.loads("k", dumps(VALUE))  # the same bytes, a new object (as Redis returns)
    assert second == VALUE
    assert len(memo) == 1


def test_a_changed_body_is_decoded_again() -> None:
    memo = DecodedMemo()
    memo.loads("k", dumps(VALUE))
    changed = {**VALUE, "n": 4}
    assert memo.loads("k", dumps(changed)) == changed


def test_corrupt_bodies_raise_value_error() -> None:
    with pytest.raises(ValueError):
        DecodedMemo().loads("k", b"{not json")


def test_the_byte_budget_evicts_the_least_recently_used() -> None:
    body = dumps(VALUE)
    memo = DecodedMemo(max_bytes=2 * len(body))
    memo.loads("a", body)
    memo.loads("b", body)
    memo.loads("a", body)  # a is now the most recent
    memo.loads("c", body)  # over budget: b goes
    assert len(memo) == 2
    assert set(memo._entries) == {"a", "c"}


def test_disabled_or_oversized_entries_are_not_kept() -> None:
    body = dumps(VALUE)
    assert DecodedMemo(max_bytes=0).loads("k", body) == VALUE
    small = DecodedMemo(max_entry_bytes=len(body) - 1)
    assert small.loads("k", body) == VALUE
    assert len(small) == 0


def test_plain_json_is_kept_too_and_copied() -> None:
    """A planned copy is cheaper than orjson decoding plain JSON again."""
    memo = DecodedMemo()
    plain = {"series": [{"date": "2025-01-06", "n": 3, "growth": 1.5}], "n": [1, 2]}
    first = memo.loads("k", dumps(plain))
    first["series"][0]["n"] = 0
    first["n"].append(3)
    assert memo.loads("k", dumps(plain)) == plain
    assert len(memo) == 1


def test_a_value_too_deep_to_plan_a_copy_is_returned_not_kept() -> None:
    body = b"[" * 1000 + b"]" * 1000  # orjson reads up to 1024 levels, Python recursion stops first
    memo = DecodedMemo()
    value = memo.loads("k", body)
    for _ in range(999):
        (value,) = value
    assert value == []
    assert len(memo) == 0
