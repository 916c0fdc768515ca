"""The calendar and the growth rule against independent computations (pure logic)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse.calendar import (
    Calendar,
    CalendarError,
    Grain,
    daily_average,
    growth_pct,
    week_start_index,
)


def _reference_growth(cur: int, prev: int) -> Decimal:
    """Exact rational arithmetic, rounded half away from zero."""
    exact = Fraction(100 * (cur - prev), prev)
    scaled = abs(exact) * 100
    whole = int(scaled)
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return Decimal(whole if exact >= 0 else -whole) / 100


@pytest.mark.parametrize(
    ("cur", "prev", "expected"),
    [
        (33, 32, "3.13"),  # 3.125: half away from zero, not half even
        (31, 32, "-3.13"),
        (4000, 2675, "49.53"),
        (1, 3, "-66.67"),
        (0, 5, "-100.00"),
        (7, 7, "0.00"),
    ],
)
def test_growth_half_way_cases(cur: int, prev: int, expected: str) -> None:
    assert growth_pct(cur, prev) == Decimal(expected)


def test_growth_is_none_without_a_previous_value() -> None:
    assert growth_pct(5, None) is None
    assert growth_pct(5, 0) is None
    assert growth_pct(None, 5) is None


@given(st.integers(-(10**18), 10**18), st.integers(-(10**18), 10**18).filter(bool))
def test_growth_matches_exact_rational_rounding(cur: int, prev: int) -> None:
    assert growth_pct(cur, prev) == _reference_growth(cur, prev)


def test_daily_average_rounds_like_the_rollups() -> None:
    assert daily_average(2, 7) == Decimal("0.285714")
    assert daily_average(4000, 31) == Decimal("129.032258")
    expected = (Decimal(300) / 7).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    assert daily_average(300, 7) == expected


@pytest.mark.parametrize("start", range(7))
def test_weeks_start_on_the_configured_day(start: int) -> None:
    cal = Calendar(start)
    day = date(2024, 12, 30)
    for offset in range(20):
        d = day + timedelta(days=offset)
        first = cal.period_start(Grain.WEEK, d)
        assert first.weekday() == start
        assert 0 <= (d - first).days < 7
        assert cal.next_start(Grain.WEEK, d) == first + timedelta(days=7)
        assert cal.previous_start(Grain.WEEK, d) == first - timedelta(days=7)


def test_months_across_years_and_leap_days() -> None:
    cal = Calendar()
    assert cal.period_start(Grain.MONTH, date(2024, 2, 29)) == date(2024, 2, 1)
    assert cal.days_in(Grain.MONTH, date(2024, 2, 10)) == 29
    assert cal.days_in(Grain.MONTH, date(2025, 2, 10)) == 28
    assert cal.next_start(Grain.MONTH, date(2024, 12, 31)) == date(2025, 1, 1)
    assert cal.previous_start(Grain.MONTH, date(2025, 1, 15)) == date(2024, 12, 1)
    assert cal.shift(Grain.MONTH, date(2025, 3, 3), -14) == date(2024, 1, 1)


def test_periods_overlapping_a_window() -> None:
    cal = Calendar()  # Monday weeks
    weeks = list(cal.periods(Grain.WEEK, date(2024, 12, 31), date(2025, 1, 7)))
    assert weeks == [date(2024, 12, 30), date(2025, 1, 6)]
    months = list(cal.periods(Grain.MONTH, date(2024, 1, 31), date(2024, 3, 1)))
    assert months == [date(2024, 1, 1), date(2024, 2, 1)]
    assert list(cal.periods(Grain.MONTH, date(9999, 12, 5), date(9999, 12, 31))) == [
        date(9999, 12, 1)
    ]


def test_the_ends_of_time_are_clear_errors() -> None:
    cal = Calendar()
    with pytest.raises(CalendarError, match="9999-12"):
        cal.next_start(Grain.MONTH, date(9999, 12, 1))
    with pytest.raises(CalendarError, match="0001-01-01"):
        Calendar(6).period_start(Grain.WEEK, date(1, 1, 1))  # a Monday: its Sunday week
        # would start before year 1
    with pytest.raises(CalendarError, match="0001-01"):
        cal.previous_start(Grain.MONTH, date(1, 1, 1))


def test_grain_vocabulary() -> None:
    assert Grain.parse("daily") is Grain.DAY
    assert Grain.parse(" Week ") is Grain.WEEK
    assert Grain.MONTH.adjective == "monthly"
    with pytest.raises(CalendarError, match="unknown grain"):
        Grain.parse("year")
    assert week_start_index("Sunday") == 6
    with pytest.raises(CalendarError, match="weekday"):
        week_start_index("funday")
