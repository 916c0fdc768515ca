"""The FUNNEL query: how many actors (or entities) reach each step, and the conversions.

An actor enters at their first step-1 event inside the period; they reach step k at their first
step-k event at or after the moment they reached step k - 1 and before `conversion_window_days`
have passed since entering (the window is half-open: an event exactly N days after entering is
outside). Later steps may fall after the period's end, within the window. Rows: `step` (1..n),
`conversion_from_previous_pct`, `conversion_from_first_pct` (rounded as the rollups' growth,
NULL for step 1's previous and where the base is 0), then `value`, the step's count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlglot import exp

from custom_metrics.percent import rounded_percent

FUNNEL_COLUMNS: Final = (
    "step",
    "conversion_from_previous_pct",
    "conversion_from_first_pct",
    "value",
)


@dataclass(frozen=True)
class FunnelParts:
    """What the compiler checked and bound: each piece is a ready sqlglot expression."""

    table: exp.Table
    who: exp.Expression
    at: exp.Expression
    steps: Sequence[exp.Expression]
    conditions: Sequence[exp.Expression]
    start: exp.Expression | None
    end: exp.Expression | None
    horizon: exp.Expression | None
    window: exp.Expression


def _table(name: str, alias: str | None = None) -> exp.Table:
    table = exp.Table(this=exp.to_identifier(name))
    if alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return table


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def _events(parts: FunnelParts) -> exp.Select:
    """The events that can matter: someone to count, any step, inside [start, horizon)."""
    flags = [
        exp.alias_(exp.Paren(this=step.copy()), f"cm_s{index}")
        for index, step in enumerate(parts.steps, start=1)
    ]
    conditions: list[exp.Expression] = [
        exp.Not(this=exp.Is(this=parts.who.copy(), expression=exp.Null())),
        *(c.copy() for c in parts.conditions),
        exp.Paren(this=exp.or_(*(exp.Paren(this=s.copy()) for s in parts.steps))),
    ]
    if parts.start is not None:
        conditions.append(exp.GTE(this=parts.at.copy(), expression=parts.start.copy()))
    if parts.horizon is not None:
        conditions.append(exp.LT(this=parts.at.copy(), expression=parts.horizon.copy()))
    return (
        exp.select(exp.alias_(parts.who.copy(), "cm_who"), exp.alias_(parts.at.copy(), "cm_at"))
        .select(*flags)
        .from_(parts.table.copy())
        .where(exp.and_(*conditions))
    )


def _entered(parts: FunnelParts) -> exp.Select:
    first = exp.Min(this=_col("cm_at"))
    conditions: list[exp.Expression] = [_col("cm_s1")]
    if parts.start is not None:
        conditions.append(exp.GTE(this=_col("cm_at"), expression=parts.start.copy()))
    if parts.end is not None:
        conditions.append(exp.LT(this=_col("cm_at"), expression=parts.end.copy()))
    return (
        exp.select(_col("cm_who"), exp.alias_(first, "cm_in"), exp.alias_(first.copy(), "cm_t"))
        .from_(_table("cm_e"))
        .where(exp.and_(*conditions))
        .group_by(_col("cm_who"))
    )


def _reached(step: int, window: exp.Expression) -> exp.Select:
    """Who reached `step`, from who reached the one before, with the moment they did."""
    on = exp.and_(
        exp.EQ(this=_col("cm_who", "e"), expression=_col("cm_who", "f")),
        _col(f"cm_s{step}", "e"),
        exp.GTE(this=_col("cm_at", "e"), expression=_col("cm_t", "f")),
        exp.LT(
            this=_col("cm_at", "e"),
            expression=exp.Add(this=_col("cm_in", "f"), expression=window.copy()),
        ),
    )
    return (
        exp.select(
            _col("cm_who", "f"),
            _col("cm_in", "f"),
            exp.alias_(exp.Min(this=_col("cm_at", "e")), "cm_t"),
        )
        .from_(_table(f"cm_f{step - 1}", "f"))
        .join(_table("cm_e", "e"), on=on)
        .group_by(_col("cm_who", "f"), _col("cm_in", "f"))
    )


def funnel_query(parts: FunnelParts, dialect: str) -> exp.Select:
    """One SELECT answering the whole funnel (a CTE per step)."""
    counts: exp.Expression | None = None
    for step in range(1, len(parts.steps) + 1):
        one = exp.select(
            exp.alias_(exp.Literal.number(step), "cm_step"),
            exp.alias_(exp.Count(this=exp.Star()), "cm_n"),
        ).from_(_table(f"cm_f{step}"))
        counts = one if counts is None else exp.union(counts, one, distinct=False)
    assert counts is not None
    first = exp.select(exp.alias_(_col("cm_n"), "cm_first")).from_(_table("cm_counts"))
    first = first.where(exp.EQ(this=_col("cm_step"), expression=exp.Literal.number(1)))
    previous_step = exp.Sub(this=_col("cm_step", "c"), expression=exp.Literal.number(1))
    outputs = [
        exp.alias_(_col("cm_step", "c"), exp.to_identifier(FUNNEL_COLUMNS[0], quoted=True)),
        exp.alias_(
            rounded_percent(_col("cm_n", "c"), _col("cm_n", "b"), dialect),
            exp.to_identifier(FUNNEL_COLUMNS[1], quoted=True),
        ),
        exp.alias_(
            rounded_percent(_col("cm_n", "c"), _col("cm_first", "a"), dialect),
            exp.to_identifier(FUNNEL_COLUMNS[2], quoted=True),
        ),
        exp.alias_(_col("cm_n", "c"), exp.to_identifier(FUNNEL_COLUMNS[3], quoted=True)),
    ]
    query = (
        exp.select(*outputs)
        .from_(_table("cm_counts", "c"))
        .join(
            _table("cm_counts", "b"),
            on=exp.EQ(this=_col("cm_step", "b"), expression=previous_step),
            join_type="left",
        )
        .join(
            exp.Subquery(this=first, alias=exp.TableAlias(this=exp.to_identifier("a"))),
            join_type="cross",
        )
        .order_by(_col("cm_step", "c"))
    )
    query = query.with_("cm_e", as_=_events(parts)).with_("cm_f1", as_=_entered(parts))
    for step in range(2, len(parts.steps) + 1):
        query = query.with_(f"cm_f{step}", as_=_reached(step, parts.window))
    return query.with_("cm_counts", as_=counts)
