"""Percentages rounded as the rollups round them, in SQL that gives the same digits on every
warehouse: round(100 * numerator / denominator, 2), half away from zero, NULL when the
denominator is NULL or 0 (exact integer arithmetic; DuckDB would divide decimals as doubles).

Whole numbers are PostgreSQL's numeric, DuckDB's hugeint and Spark's decimal(38, 0). Spark's
`div` turns its result into a 64-bit integer without an overflow check, so there the quotient
is taken as (a - mod(a, b)) / b, a decimal division that is exact."""

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


_WHOLE = {"postgres": "numeric", "duckdb": "hugeint", "spark": "decimal(38, 0)"}


def _whole_div(a: exp.Expression, b: exp.Expression, dialect: str) -> exp.Expression:
    """a // b for whole numbers a >= 0 and b > 0, as a whole number of the dialect."""
    if dialect != "spark":
        return exp.IntDiv(this=a, expression=b)
    # mod() rather than `%`, which the compiler's last check refuses as a placeholder mark.
    remainder = exp.Anonymous(this="MOD", expressions=[a, b.copy()])
    exact = exp.Sub(this=a.copy(), expression=remainder)
    return _cast(exp.Div(this=exp.Paren(this=exact), expression=b), _WHOLE[dialect])


def rounded_percent(
    numerator: exp.Expression,
    denominator: exp.Expression,
    dialect: str,
    *,
    change: bool = False,
) -> exp.Expression:
    """round(100 * n / d, 2); with `change`, round(100 * (n - d) / d, 2) (growth of n over d)."""
    whole = _WHOLE[dialect]
    top, bottom = _scaled(numerator, whole), _scaled(denominator, whole)
    if change:
        top = exp.Sub(this=top, expression=bottom.copy())
    top = exp.Paren(this=top)
    half = exp.Add(
        this=exp.Mul(this=_number(200 * 100), expression=exp.Abs(this=top.copy())),
        expression=exp.Abs(this=bottom.copy()),
    )
    magnitude = _whole_div(
        exp.Paren(this=half),
        exp.Paren(this=exp.Mul(this=_number(2), expression=exp.Abs(this=bottom.copy()))),
        dialect,
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
