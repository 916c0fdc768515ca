"""The RETENTION query: cohorts by the period of each actor's first cohort event, and how many
of them come back in each of the following periods.

An actor's cohort is the `period` (day, week from the configured week start, month) of their
first cohort event over all history before the range's end; the cohorts whose period starts in
the range are reported, each with k = 0..`periods`. The actor is retained in period k when they
have a return event in cohort period + k (on `event_date`, the UTC day). Rows: `period_start`,
`period_end` (the cohort's whole period), `k`, `cohort_size`, `retention_pct` (retained / size,
rounded as the rollups' growth, NULL for an empty cohort), then `value`, the retained count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlglot import exp

from custom_metrics.definitions import TimeGrain
from custom_metrics.errors import MetricValidationError
from custom_metrics.percent import rounded_percent
from custom_metrics.periods import MAX_BUCKETS, next_boundary, starts_period
from custom_metrics.series import PERIOD_COLUMNS

RETENTION_COLUMNS: Final = (*PERIOD_COLUMNS, "k", "cohort_size", "retention_pct", "value")
EPOCH: Final = date(1, 1, 1)  # a Monday: day numbers from here are never negative


def period_index(day: date, grain: TimeGrain, week_start_index: int) -> int:
    """A number per period, consecutive periods consecutive numbers (as the SQL computes it)."""
    days = (day - EPOCH).days
    if grain is TimeGrain.DAY:
        return days
    if grain is TimeGrain.WEEK:
        return (days + 7 - week_start_index) // 7
    return day.year * 12 + day.month - 1


@dataclass(frozen=True)
class Cohort:
    """One reported cohort period: its number and its whole [start, end)."""

    index: int
    start: date
    end: date


def reported_cohorts(
    start: date, end: date, grain: TimeGrain, week_start_index: int
) -> list[Cohort]:
    """The whole periods of the grain that start inside [start, end)."""
    day: date | None = start
    if not starts_period(start, grain, week_start_index):
        day = next_boundary(start, grain, week_start_index)
    cohorts: list[Cohort] = []
    while day is not None and day < end:
        following = next_boundary(day, grain, week_start_index)
        if following is None:
            raise MetricValidationError("end", "a cohort period would end after 9999-12-31")
        cohorts.append(Cohort(period_index(day, grain, week_start_index), day, following))
        if len(cohorts) > MAX_BUCKETS:
            raise MetricValidationError(
                "period", f"more than {MAX_BUCKETS} cohorts; pick a shorter range"
            )
        day = following
    return cohorts


@dataclass(frozen=True)
class RetentionParts:
    """What the compiler checked and bound, as sqlglot expressions."""

    table: exp.Table
    who: exp.Expression
    day: exp.Expression
    cohort_event: exp.Expression
    return_event: exp.Expression
    conditions: Sequence[exp.Expression]
    before: exp.Expression  # the range's end, as a day
    horizon: exp.Expression | None  # the day after the last return period reported
    first_cohort: exp.Expression  # the first reported cohort's index
    cohorts: Sequence[tuple[exp.Expression, exp.Expression, exp.Expression]]
    offsets: Sequence[exp.Expression]
    index_of: Callable[[exp.Expression], exp.Expression]


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _table(name: str, alias: str | None = None) -> exp.Table:
    table = exp.Table(this=exp.to_identifier(name))
    if alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def _values(
    rows: Sequence[Sequence[exp.Expression]], alias: str, columns: Sequence[str]
) -> exp.Values:
    return exp.Values(
        expressions=[exp.Tuple(expressions=[v.copy() for v in row]) for row in rows],
        alias=exp.TableAlias(
            this=exp.to_identifier(alias), columns=[exp.to_identifier(c) for c in columns]
        ),
    )


def retention_query(parts: RetentionParts, dialect: str) -> exp.Select:
    """One SELECT answering every reported cohort for k = 0..K."""
    reads: list[exp.Expression] = [
        exp.Not(this=exp.Is(this=parts.who.copy(), expression=exp.Null())),
        *(c.copy() for c in parts.conditions),
        exp.Paren(
            this=exp.or_(
                exp.Paren(this=parts.cohort_event.copy()),
                exp.Paren(this=parts.return_event.copy()),
            )
        ),
    ]
    if parts.horizon is not None:
        reads.append(exp.LT(this=parts.day.copy(), expression=parts.horizon.copy()))
    events = (
        exp.select(
            exp.alias_(parts.who.copy(), "cm_who"),
            exp.alias_(parts.day.copy(), "cm_day"),
            exp.alias_(parts.index_of(parts.day.copy()), "cm_i"),
            exp.alias_(exp.Paren(this=parts.cohort_event.copy()), "cm_c"),
            exp.alias_(exp.Paren(this=parts.return_event.copy()), "cm_r"),
        )
        .from_(parts.table.copy())
        .where(exp.and_(*reads))
    )
    first = (
        exp.select(_col("cm_who"), exp.alias_(exp.Min(this=_col("cm_i")), "cm_ci"))
        .from_(_table("cm_e"))
        .where(exp.and_(_col("cm_c"), exp.LT(this=_col("cm_day"), expression=parts.before.copy())))
        .group_by(_col("cm_who"))
    )
    cohort = (
        exp.select(_col("cm_who"), _col("cm_ci"))
        .from_(_table("cm_first"))
        .where(exp.GTE(this=_col("cm_ci"), expression=parts.first_cohort.copy()))
    )
    sizes = (
        exp.select(_col("cm_ci"), exp.alias_(exp.Count(this=exp.Star()), "cm_n"))
        .from_(_table("cm_cohort"))
        .group_by(_col("cm_ci"))
    )
    k = exp.Sub(this=_col("cm_i", "e"), expression=_col("cm_ci", "c"))
    back = (
        exp.select(_col("cm_ci", "c"), _col("cm_who", "c"), exp.alias_(k, "cm_k"))
        .distinct()
        .from_(_table("cm_cohort", "c"))
        .join(
            _table("cm_e", "e"),
            on=exp.and_(
                exp.EQ(this=_col("cm_who", "e"), expression=_col("cm_who", "c")),
                _col("cm_r", "e"),
                exp.GTE(this=_col("cm_i", "e"), expression=_col("cm_ci", "c")),
                exp.LTE(
                    this=_col("cm_i", "e"),
                    expression=exp.Add(
                        this=_col("cm_ci", "c"), expression=parts.offsets[-1].copy()
                    ),
                ),
            ),
        )
    )
    retained = (
        exp.select(_col("cm_ci"), _col("cm_k"), exp.alias_(exp.Count(this=exp.Star()), "cm_n"))
        .from_(_table("cm_back"))
        .group_by(_col("cm_ci"), _col("cm_k"))
    )
    size = exp.Coalesce(this=_col("cm_n", "s"), expressions=[exp.Literal.number(0)])
    kept = exp.Coalesce(this=_col("cm_n", "r"), expressions=[exp.Literal.number(0)])
    names = [exp.to_identifier(c, quoted=True) for c in RETENTION_COLUMNS]
    outputs = [
        exp.alias_(_col("cm_start", "p"), names[0]),
        exp.alias_(_col("cm_end", "p"), names[1]),
        exp.alias_(_col("cm_k", "o"), names[2]),
        exp.alias_(size, names[3]),
        exp.alias_(rounded_percent(kept, size.copy(), dialect), names[4]),
        exp.alias_(kept.copy(), names[5]),
    ]
    query = (
        exp.select(*outputs)
        .from_(_values(parts.cohorts, "p", ("cm_ci", "cm_start", "cm_end")))
        .join(_values([[o] for o in parts.offsets], "o", ("cm_k",)), join_type="cross")
        .join(
            _table("cm_sizes", "s"),
            on=exp.EQ(this=_col("cm_ci", "s"), expression=_col("cm_ci", "p")),
            join_type="left",
        )
        .join(
            _table("cm_kept", "r"),
            on=exp.and_(
                exp.EQ(this=_col("cm_ci", "r"), expression=_col("cm_ci", "p")),
                exp.EQ(this=_col("cm_k", "r"), expression=_col("cm_k", "o")),
            ),
            join_type="left",
        )
        .order_by(_col("cm_start", "p"), _col("cm_k", "o"))
    )
    for name, body in (
        ("cm_e", events),
        ("cm_first", first),
        ("cm_cohort", cohort),
        ("cm_sizes", sizes),
        ("cm_back", back),
        ("cm_kept", retained),
    ):
        query = query.with_(name, as_=body)
    return query
