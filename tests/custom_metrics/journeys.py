"""Plain-Python references for FUNNEL and RETENTION: walking each actor's events in time, and
counting cohorts by calendar dates (no SQL, no code shared with the compiler)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from tests.custom_metrics.support import percent

Row = Mapping[str, Any]


def funnel_reference(
    events: Sequence[Row],
    steps: Sequence[Callable[[Row], bool]],
    window_days: int,
    lo: datetime | None,
    hi: datetime | None,
    who: str = "actor_id",
    keep: Callable[[Row], bool] = lambda r: True,
) -> list[tuple[int, Any, Any, int]]:
    """(step, from previous %, from first %, count) by walking each actor's events in time."""
    by_who: dict[Any, list[Row]] = defaultdict(list)
    for row in events:
        if row[who] is not None and keep(row):
            by_who[row[who]].append(row)
    counts = [0] * len(steps)
    window = timedelta(days=window_days)
    for rows in by_who.values():
        entries = [
            r["occurred_at"]
            for r in rows
            if steps[0](r)
            and (lo is None or r["occurred_at"] >= lo)
            and (hi is None or r["occurred_at"] < hi)
        ]
        if not entries:
            continue
        entered = reached = min(entries)
        counts[0] += 1
        for index, step in enumerate(steps[1:], start=1):
            later = [
                r["occurred_at"]
                for r in rows
                if step(r) and reached <= r["occurred_at"] < entered + window
            ]
            if not later:
                break
            reached = min(later)
            counts[index] += 1
    return [
        (
            index + 1,
            percent(count, counts[index - 1]) if index else None,
            percent(count, counts[0]),
            count,
        )
        for index, count in enumerate(counts)
    ]


def period_start(day: date, grain: str, week_start: int) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    return day.replace(day=1)


def shift(start: date, grain: str, k: int) -> date:
    if grain == "day":
        return start + timedelta(days=k)
    if grain == "week":
        return start + timedelta(weeks=k)
    months = start.year * 12 + start.month - 1 + k
    return date(months // 12, months % 12 + 1, 1)


def retention_reference(
    events: Sequence[Row],
    is_cohort: Callable[[Row], bool],
    is_return: Callable[[Row], bool],
    grain: str,
    periods: int,
    lo: date,
    hi: date,
    week_start: int = 0,
    who: str = "actor_id",
    keep: Callable[[Row], bool] = lambda r: True,
) -> list[tuple[Any, ...]]:
    """(period_start, period_end, k, cohort_size, rate %, retained) by calendar arithmetic."""
    first: dict[Any, date] = {}
    returns: dict[Any, set[date]] = {}
    for row in events:
        if row[who] is None or not keep(row):
            continue
        day = row["event_date"]
        if is_cohort(row) and day < hi:
            first[row[who]] = min(day, first.get(row[who], day))
        if is_return(row):
            returns.setdefault(row[who], set()).add(period_start(day, grain, week_start))
    out: list[tuple[Any, ...]] = []
    cohort = period_start(lo, grain, week_start)
    if cohort < lo:
        cohort = shift(cohort, grain, 1)
    while cohort < hi:
        members = [w for w, d in first.items() if period_start(d, grain, week_start) == cohort]
        for k in range(periods + 1):
            target = shift(cohort, grain, k)
            kept = sum(1 for w in members if target in returns.get(w, set()))
            out.append(
                (
                    cohort,
                    shift(cohort, grain, 1),
                    k,
                    len(members),
                    percent(kept, len(members)),
                    kept,
                )
            )
        cohort = shift(cohort, grain, 1)
    return out
