"""Percentages rounded as the rollups round them, in SQL that gives the same digits on both
warehouses: round(100 * numerator / denominator, 2), half away from zero, NULL when the
denominator is NULL or 0 (exact integer arithmetic; DuckDB would divide decimals as doubles)."""

from __future__ import annotations

from sqlglot import exp


def _cast(node: exp.Expression, type_name: str) -> exp.Expression:
    return exp.cast(node, exp.DataType.build(type_name))


def _number(value: int | str) -> exp.Expression:
    return exp.Literal.number(value)


def _scaled(node: exp.Expression, whole: str) -> exp.Expression:
    """The value fixed to 9 decimals, as a whole number of billionths."""
    fixed = exp.Mul(this=_cast(node.copy(), "decimal(38, 9)"), expression=_number(10**9))
    return _cast(exp.Paren(this=fixed), whole)


def rounded_percent(
    numerator: exp.Expression,
    denominator: exp.Expression,
    dialect: str,
    *,
    change: bool = False,
) -> exp.Expression:
    """round(100 * n / d, 2); with `change`, round(100 * (n - d) / d, 2) (growth of n over d)."""
    whole = "numeric" if dialect == "postgres" else "hugeint"
    top, bottom = _scaled(numerator, whole), _scaled(denominator, whole)
    if change:
        top = exp.Sub(this=top, expression=bottom.copy())
    top = exp.Paren(this=top)
    half = exp.Add(
        this=exp.Mul(this=_number(200 * 100), expression=exp.Abs(this=top.copy())),
        expression=exp.Abs(this=bottom.copy()),
    )
    magnitude = exp.IntDiv(
        this=exp.Paren(this=half),
        expression=exp.Paren(this=exp.Mul(this=_number(2), expression=exp.Abs(this=bottom.copy()))),
    )
    same_sign = exp.EQ(
        this=exp.Paren(this=exp.LT(this=top.copy(), expression=_number(0))),
        expression=exp.Paren(this=exp.LT(this=bottom.copy(), expression=_number(0))),
    )
    sign = exp.Case(ifs=[exp.If(this=same_sign, true=_number(1))], default=_number(-1))
    signed = _cast(exp.Mul(this=sign, expression=exp.Paren(this=magnitude)), "decimal(38, 0)")
    value = _cast(exp.Mul(this=signed, expression=_number("0.01")), "decimal(38, 2)")
    missing = exp.or_(
        exp.Is(this=denominator.copy(), expression=exp.Null()),
        exp.Is(this=numerator.copy(), expression=exp.Null()),
        exp.EQ(this=denominator.copy(), expression=_number(0)),
    )
    return exp.Case(ifs=[exp.If(this=missing, true=exp.Null())], default=value)


def growth_pct(current: exp.Expression, previous: exp.Expression, dialect: str) -> exp.Expression:
    """round(100 * (current - previous) / previous, 2), NULL where previous is NULL or 0."""
    return rounded_percent(current, previous, dialect, change=True)
