"""JSON serialization round trips: dates, datetimes with zones, Decimals, nesting; no pickle."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from serving.serialization import SerializationError, copier, dumps, loads

CASES: list[Any] = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    "text with \n newline and ünïcode",
    [],
    {},
    date(2025, 3, 4),
    datetime(2025, 3, 4, 12, 30, 15, 123456),
    datetime(2025, 3, 4, 12, 30, tzinfo=UTC),
    datetime(2025, 3, 4, 12, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    time(23, 59, 1, 5),
    Decimal("12.34"),
    Decimal("-0.000001"),
    Decimal("1E+2"),
    Decimal("123456789012345678901234567890.123456789"),
    {"series": [{"day": date(2025, 3, 1), "n": 3, "avg": Decimal("1.50")}], "meta": {"ok": 1}},
    [[date(2025, 1, 1), [Decimal("0.1"), {"x": [datetime(2025, 1, 1, tzinfo=UTC)]}]]],
]


@pytest.mark.parametrize("value", CASES, ids=repr)
def test_round_trip(value: Any) -> None:
    back = loads(dumps(value))
    assert back == value
    assert type(back) is type(value)


def test_decimal_keeps_exact_digits_and_exponent() -> None:
    for text in ("12.340", "1E+2", "-0.00", "NaN"):
        back = loads(dumps(Decimal(text)))
        assert str(back) == text


def test_zoned_datetime_keeps_its_zone() -> None:
    berlin = datetime(2025, 3, 30, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    back = loads(dumps(berlin))
    assert back == berlin
    assert back.tzinfo == ZoneInfo("Europe/Berlin")
    assert back.utcoffset() == berlin.utcoffset()


def test_user_dicts_that_look_like_markers_come_back_unchanged() -> None:
    value = {
        "$date": "not a date",
        "$$already": 1,
        "nested": [{"$decimal": "x"}, {"$datetime": "y", "$tz": "z"}],
        "plain": "$date",
    }
    assert loads(dumps(value)) == value


def test_output_is_plain_compact_json_without_pickle() -> None:
    data = dumps({"d": date(2025, 3, 4), "n": Decimal("1.50"), "f": 1.5, "x": Decimal("NaN")})
    assert data == b'{"d":{"$date":"2025-03-04"},"n":150E-2,"f":1.5,"x":{"$decimal":"NaN"}}'
    # Any JSON reader sees the Decimal as a number.
    assert json.loads(data)["n"] == 1.5
    assert b" " not in data


def test_decimals_and_floats_stay_apart() -> None:
    value = [Decimal("2"), 2.0, Decimal("1E+16"), 1e16, Decimal("-0.5"), -0.5, 1e-07]
    back = loads(dumps(value))
    assert [type(item) for item in back] == [type(item) for item in value]
    assert [str(item) for item in back] == [str(item) for item in value]


def test_strings_that_look_like_encoded_decimals_stay_strings() -> None:
    value = {"s": '{"$decimal":"15E-1"}', "t": "150E-2", "u": {"$decimal": "15E-1"}}
    assert loads(dumps(value)) == value


def test_entries_written_with_decimal_markers_still_decode() -> None:
    """Before Decimals were written as numbers, every one was a marker object."""
    assert loads(b'{"n":{"$decimal":"1.50"},"m":[{"$decimal":"-1E+2"}]}') == {
        "n": Decimal("1.50"),
        "m": [Decimal("-1E+2")],
    }


@pytest.mark.parametrize(
    "value",
    [
        {"rows": [{"day": date(2025, 1, 1), "n": Decimal("1.5")}], "meta": {"k": [1]}},
        {"series": {"n": [1, 2], "d": ["2025-01-01", None]}, "flat": 1, "empty": {}},
        [[1, [2, {"a": [3]}]], {"b": {}}, 4, [], [{"x": 1}, {"y": [2]}]],
        [{"a": 1}, {"b": 2}],
        "leaf",
        None,
    ],
)
def test_copier_shares_no_container(value: Any) -> None:
    original = copy.deepcopy(value)
    copy_of = copier(value)
    for _ in range(2):
        made = copy_of()
        assert made == original
        _mutate_every_container(made)
        assert value == original


def _mutate_every_container(value: Any) -> None:
    if isinstance(value, dict):
        for item in list(value.values()):
            _mutate_every_container(item)
        value["added"] = True
    elif isinstance(value, list):
        for item in list(value):
            _mutate_every_container(item)
        value.append("added")


def test_tuples_come_back_as_lists() -> None:
    assert loads(dumps((1, (2, date(2025, 1, 1))))) == [1, [2, date(2025, 1, 1)]]


@pytest.mark.parametrize("value", [{1: "int key"}, {"s": {1, 2}}, object(), b"bytes"])
def test_values_that_cannot_round_trip_are_rejected(value: Any) -> None:
    with pytest.raises(SerializationError):
        dumps(value)


def test_loads_accepts_str() -> None:
    assert loads('{"a":{"$date":"2025-03-04"}}') == {"a": date(2025, 3, 4)}
