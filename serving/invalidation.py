"""Which cache tags a rollup materialization or a custom metric change invalidates.

Pure functions (plus thin calls on a `MetricsCache`); the Dagster sensor that reacts to
materializations lives in the orchestration package and only calls
`invalidate_for_materialization`.

Tag scheme, chosen so that a materialization invalidates exactly the entries that read it:

* Daily data: an entry reading days ``[start, end)`` carries a *cover* of that window: the
  ``period:daily-month:<first>`` tags of whole calendar months inside it, then the
  ``period:daily-week:<monday>`` tags of whole ISO weeks, then ``period:daily:<day>`` for the
  remaining days (a 90-day window needs about 15 tags, not 90). Materializing day D bumps D's
  day, week and month tags, so an entry is invalidated exactly when D lies in its window.
  The buckets are ISO weeks on purpose: they only group tags and need no configuration.
* Weekly and monthly data: one ``period:<grain>:<period_start>`` tag per period read.
  Materializing a period also bumps the following period, because the rollups rewrite its
  ``prev_*`` and growth (``refresh_next``).
* ``grain:<grain>`` is on every entry built from that rollup; bump it for a full rebuild, or
  when a backfill spans more periods than ``max_period_tags`` (one bump instead of thousands).
* ``custom:<definitionId>`` is on every cached value of a custom metric definition.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING

from serving.keys import GRAINS, custom_tag, grain_tag, period_tag
from warehouse.calendar import Calendar, Grain, period_after

if TYPE_CHECKING:
    from serving.cache import MetricsCache

__all__ = [
    "add_months",
    "daily_cover_tags",
    "invalidate_custom_metric",
    "invalidate_for_materialization",
    "invalidate_grain",
    "month_start",
    "parse_partition_key",
    "period_tags",
    "tags_for_custom_metric",
    "tags_for_materialization",
]

DEFAULT_MAX_PERIOD_TAGS = 400


ISO_WEEKS = Calendar(0)  # the daily tag buckets: ISO weeks, whatever METRICS_WEEK_START says


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return ISO_WEEKS.period_start(Grain.MONTH, day)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s month (negative goes back)."""
    return ISO_WEEKS.shift(Grain.MONTH, day, months)


def _check_grain(grain: str) -> None:
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")


def _check_range(start: date, end: date) -> None:
    if not isinstance(start, date) or not isinstance(end, date):
        raise TypeError("period bounds must be dates")
    if end < start:
        raise ValueError(f"period end {end} is before its start {start} (ranges are [start, end))")


def _period_starts(grain: str, start: date, end: date) -> Iterator[date]:
    """Start dates of the ``grain`` periods that begin in ``[start, end)`` (weeks counted from
    ``start``, which is a week start)."""
    if start < end:
        calendar = Calendar(start.weekday())
        yield from (p for p in calendar.periods(Grain.parse(grain), start, end) if p >= start)


def _next_period(grain: str, period: date) -> date:
    return period_after(Grain.parse(grain), period)


def daily_cover_tags(start: date, end: date) -> list[str]:
    """Tags for an entry that reads daily rows of ``[start, end)`` (months, weeks, then days)."""
    _check_range(start, end)
    tags: list[str] = []
    current = start
    while current < end:
        for grain, bucket in ((Grain.MONTH, "month"), (Grain.WEEK, "week"), (Grain.DAY, "")):
            following = period_after(grain, current)
            if ISO_WEEKS.period_start(grain, current) == current and following <= end:
                tags.append(period_tag("daily", bucket, current))
                current = following
                break
    return tags


def period_tags(grain: str, start: date, end: date) -> list[str]:
    """Tags for an entry that reads ``grain`` rows whose period starts in ``[start, end)``."""
    _check_grain(grain)
    _check_range(start, end)
    if grain == "daily":
        return daily_cover_tags(start, end)
    return [period_tag(grain, "", p) for p in _period_starts(grain, start, end)]


def tags_for_materialization(
    grain: str,
    period_start: date,
    period_end: date,
    *,
    max_period_tags: int = DEFAULT_MAX_PERIOD_TAGS,
) -> list[str]:
    """The tags to bump after the ``grain`` rollup was rebuilt for ``[period_start, period_end)``.

    For weekly and monthly grains the period after the range is included (its growth changed).
    A range of more than ``max_period_tags`` periods yields ``grain:<grain>`` instead.
    """
    _check_grain(grain)
    _check_range(period_start, period_end)
    periods = list(_period_starts(grain, period_start, period_end))
    if not periods:
        return []
    if grain != "daily":
        periods.append(_next_period(grain, periods[-1]))
    if len(periods) > max_period_tags:
        return [grain_tag(grain)]
    tags: list[str] = []
    for period in periods:
        if grain == "daily":
            tags.append(period_tag("daily", "", period))
            tags.append(period_tag("daily", "week", ISO_WEEKS.period_start(Grain.WEEK, period)))
            tags.append(period_tag("daily", "month", month_start(period)))
        else:
            tags.append(period_tag(grain, "", period))
    return list(dict.fromkeys(tags))


def parse_partition_key(grain: str, partition_key: str) -> tuple[date, date]:
    """The [start, end) of a Dagster partition key (``YYYY-MM-DD``; monthly also ``YYYY-MM``)."""
    _check_grain(grain)
    text = partition_key.strip()
    try:
        if grain == "monthly" and len(text) == 7:
            start = date.fromisoformat(f"{text}-01")
        else:
            start = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid {grain} partition key {partition_key!r}") from None
    if grain == "monthly" and start.day != 1:
        raise ValueError(f"monthly partition key {partition_key!r} is not a first of month")
    return start, _next_period(grain, start)


def invalidate_for_materialization(
    cache: MetricsCache,
    grain: str,
    partition_key: str,
    last_partition_key: str | None = None,
    *,
    max_period_tags: int = DEFAULT_MAX_PERIOD_TAGS,
) -> list[str]:
    """Bump the tags of a materialized partition (or inclusive partition range); returns them.

    Redis errors propagate so the calling sensor can retry rather than leave stale entries.
    """
    start, end = parse_partition_key(grain, partition_key)
    if last_partition_key is not None:
        _, end = parse_partition_key(grain, last_partition_key)
    tags = tags_for_materialization(grain, start, end, max_period_tags=max_period_tags)
    cache.invalidate_tags(tags)
    return tags


def invalidate_grain(cache: MetricsCache, grain: str) -> str:
    """Invalidate everything built from one rollup (after a full rebuild); returns the tag."""
    tag = grain_tag(grain)
    cache.invalidate_by_tag(tag)
    return tag


def tags_for_custom_metric(
    definition_id: str | int,
    data_source: str | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
) -> list[str]:
    """Tags for a cached custom metric value: its definition, plus the rollup period it read.

    ``data_source`` ``daily_metrics``/``weekly_metrics``/``monthly_metrics`` with a period adds
    the matching period tags, so the value also refreshes when that data is re-materialized.
    ``events`` is mapped to the daily tags: a day's partition run is when its events are final.
    """
    tags = [custom_tag(definition_id)]
    grains = {
        "events": "daily",
        "daily_metrics": "daily",
        "weekly_metrics": "weekly",
        "monthly_metrics": "monthly",
    }
    if data_source is not None:
        if data_source not in grains:
            raise ValueError(f"unknown data source {data_source!r}")
        grain = grains[data_source]
        tags.append(grain_tag(grain))
        if period_start is not None and period_end is not None:
            tags.extend(period_tags(grain, period_start, period_end))
    return tags


def invalidate_custom_metric(cache: MetricsCache, definition_id: str | int) -> str:
    """Invalidate every cached value of a custom metric definition (after it changed)."""
    tag = custom_tag(definition_id)
    cache.invalidate_by_tag(tag)
    return tag
