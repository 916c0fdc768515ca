"""The Dagster "top growth movers" table shows growth exactly as the rollups store it:
half away from zero, so 33 vs 32 events is +3.13% (half-even rounding showed 3.12%)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from orchestration.metadata import Mover, movers_markdown
from orchestration.partitions import Grain
from warehouse.calendar import growth_pct


@pytest.mark.parametrize(
    ("previous", "current", "shown"),
    [
        (32, 33, "+3.13%"),
        (32, 31, "-3.13%"),
        (8, 9, "+12.50%"),
        (3, 2, "-33.33%"),
        (40, 41, "+2.50%"),
    ],
)
def test_movers_round_half_away_from_zero_like_the_rollups(
    previous: int, current: int, shown: str
) -> None:
    mover = Mover("asset", "a1", previous, current)
    assert mover.growth_pct == growth_pct(current, previous)
    # The SQL rule, computed independently: round(100 * (cur - prev) / prev, 2), half up in size.
    exact = Decimal(100 * (current - previous)) / Decimal(previous)
    expected = exact.copy_abs().quantize(Decimal("0.01"), rounding="ROUND_HALF_UP").copy_sign(exact)
    assert mover.growth_pct == expected
    table = movers_markdown(Grain.WEEK, date(2024, 3, 11), [mover])
    assert f"| {shown} |" in table
