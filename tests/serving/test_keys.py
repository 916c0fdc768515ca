"""Key and tag builders: documented patterns, escaping of user input (no hash tags)."""

from __future__ import annotations

from datetime import date

import pytest

from serving.keys import (
    custom_key,
    custom_tag,
    daily_key,
    dashboard_key,
    encode_component,
    entity_tag,
    grain_tag,
    key_prefix,
    monthly_key,
    period_tag,
    user_tag,
    weekly_key,
)


def test_documented_patterns() -> None:
    assert daily_key("asset", "a1", date(2025, 3, 4)) == "metrics:daily:asset:a1:2025-03-04"
    assert weekly_key("asset", "a1", "2025-03-03") == "metrics:weekly:asset:a1:2025-03-03"
    assert monthly_key("license", "L-9", 2025, 3) == "metrics:monthly:license:L-9:2025-03"
    assert (
        custom_key(42, date(2025, 3, 1), date(2025, 3, 8))
        == "metrics:custom:42:2025-03-01:2025-03-08"
    )
    assert dashboard_key("u7", "asset", "30d") == "metrics:dashboard:u7:asset:30d"
    assert (
        dashboard_key("u7", "asset", "30d", "a1", "2025-03-10")
        == "metrics:dashboard:u7:asset:30d:a1:2025-03-10"
    )


def test_star_level_stays_readable() -> None:
    assert daily_key("*", "*", "2025-03-04") == "metrics:daily:*:*:2025-03-04"


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("{slot}", "%7Bslot%7D"),
        ("a:b", "a%3Ab"),
        ("with space", "with%20space"),
        ("tab\there", "tab%09here"),
        ("100%", "100%25"),
        ("ünï", "%C3%BCn%C3%AF"),
    ],
)
def test_components_are_percent_encoded(raw: str, encoded: str) -> None:
    assert encode_component(raw) == encoded


def test_braces_never_reach_the_key() -> None:
    key = daily_key("asset", "{evil}", "2025-03-04")
    assert "{" not in key and "}" not in key
    key = dashboard_key("{u}", "a}b", "{30d}", "{x}")
    assert "{" not in key and "}" not in key


def test_colons_cannot_forge_segments() -> None:
    key = daily_key("asset", "a1:2025-01-01", "2025-03-04")
    assert key.count(":") == 4
    assert daily_key("a:b", "c", "2025-03-04") != daily_key("a", "b:c", "2025-03-04")


def test_distinct_inputs_give_distinct_keys() -> None:
    ids = ["a b", "a%20b", "a+b", "a%2Bb", "{a}", "%7Ba%7D"]
    keys = {daily_key("asset", i, "2025-03-04") for i in ids}
    assert len(keys) == len(ids)


@pytest.mark.parametrize("bad", ["", "x" * 201])
def test_empty_or_huge_components_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        daily_key("asset", bad, "2025-03-04")


@pytest.mark.parametrize("bad", ["2025-3-4", "yesterday", "2025-02-30", "2025-03-04:x"])
def test_dates_are_validated(bad: str) -> None:
    with pytest.raises(ValueError):
        daily_key("asset", "a1", bad)


def test_month_is_validated() -> None:
    with pytest.raises(ValueError):
        monthly_key("asset", "a1", 2025, 13)


def test_key_prefix_groups_statistics() -> None:
    assert key_prefix("metrics:daily:asset:a1:2025-03-04") == "metrics:daily"
    assert key_prefix("metrics:dashboard:u:t:7d") == "metrics:dashboard"
    assert key_prefix("metrics:x") == "metrics:x"
    assert key_prefix("plain") == "plain"


def test_tags() -> None:
    assert grain_tag("daily") == "grain:daily"
    assert entity_tag("asset", "a 1") == "entity:asset:a%201"
    assert user_tag("{u}") == "user:%7Bu%7D"
    assert custom_tag(7) == "custom:7"
    assert period_tag("daily", "", date(2025, 3, 4)) == "period:daily:2025-03-04"
    assert period_tag("daily", "week", "2025-03-03") == "period:daily-week:2025-03-03"
    with pytest.raises(ValueError):
        grain_tag("hourly")
    with pytest.raises(ValueError):
        period_tag("daily", "year", "2025-01-01")
