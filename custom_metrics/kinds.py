"""The value kind of a checked expression (number, text, date, ...), so type errors are refused.

A definition that would only fail inside the database (`sum(event_type)`, `max(event_type)`
stored into a numeric value column, `revenue_cents like 'a%'`, `where revenue_cents`) is rejected
at validation with a message that names the part; every warehouse then agrees on what runs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from sqlglot import exp

from custom_metrics.errors import MetricValidationError
from custom_metrics.sources import ColumnKind, DataSource


class Kind(StrEnum):
    """What an expression yields."""

    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"
    NULL = "null"


_NUMERIC_RESULT: Final = (
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Neg,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Sum,
    exp.Avg,
)
_COUNTS: Final = (exp.Count, exp.CountIf, exp.Length)
_TEXT_FUNCTIONS: Final = (exp.Lower, exp.Upper)
_CONDITIONS: Final = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.And,
    exp.Or,
    exp.Not,
)
_TIMES: Final = frozenset({Kind.DATE, Kind.TIMESTAMP})


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def compatible(a: Kind, b: Kind) -> bool:
    """Whether two kinds can meet in a comparison or in the branches of CASE / COALESCE."""
    return a == b or Kind.NULL in (a, b) or {a, b} <= _TIMES


class KindChecker:
    """Infers kinds bottom-up and raises MetricValidationError where they do not fit."""

    def __init__(self, source: DataSource, field: str) -> None:
        self.source = source
        self.field = field

    def fail(self, node: exp.Expression, message: str) -> MetricValidationError:
        start = node.meta.get("start") if node.meta else None
        return MetricValidationError(self.field, message, start if isinstance(start, int) else None)

    def kind(self, node: exp.Expression) -> Kind:
        """The kind of `node` (already checked against the allowlists)."""
        node = _unparen(node)
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, exp.Literal):
            return Kind.TEXT if node.is_string else Kind.NUMBER
        if isinstance(node, exp.Null):
            return Kind.NULL
        if isinstance(node, exp.Boolean):
            return Kind.BOOLEAN
        if isinstance(node, exp.Star):
            return Kind.NULL
        if isinstance(node, exp.Distinct):
            for child in node.expressions:
                self.kind(child)
            return Kind.NULL
        if isinstance(node, _COUNTS):
            self._children_of(node, Kind.TEXT if isinstance(node, exp.Length) else None)
            if isinstance(node, exp.CountIf):
                self._expect(node.this, Kind.BOOLEAN, "count_if() takes a condition")
            return Kind.NUMBER
        if isinstance(node, _NUMERIC_RESULT):
            for child in self._operands(node):
                self._expect(child, Kind.NUMBER, f"{node.key}() needs numbers")
            return Kind.NUMBER
        if isinstance(node, _TEXT_FUNCTIONS):
            self._expect(node.this, Kind.TEXT, f"{node.key}() needs text")
            return Kind.TEXT
        if isinstance(node, exp.Max | exp.Min):
            return self.kind(node.this)
        if isinstance(node, exp.Like | exp.ILike):
            self._expect(node.this, Kind.TEXT, f"{node.key.upper()} compares text")
            self._expect(node.expression, Kind.TEXT, f"{node.key.upper()} compares text")
            return Kind.BOOLEAN
        if isinstance(node, exp.And | exp.Or | exp.Not):
            for child in self._operands(node):
                self._expect(child, Kind.BOOLEAN, f"{node.key.upper()} combines conditions")
            return Kind.BOOLEAN
        if isinstance(node, _CONDITIONS):
            self._same(node, self._operands(node), "cannot compare")
            return Kind.BOOLEAN
        if isinstance(node, exp.Case):
            subject = node.args.get("this")
            for branch in node.args.get("ifs") or ():
                if subject is None:
                    self._expect(branch.this, Kind.BOOLEAN, "CASE WHEN takes a condition")
                else:
                    self._same(node, [subject, branch.this], "CASE compares")
            results = [b.args["true"] for b in node.args.get("ifs") or ()]
            results += [node.args["default"]] if node.args.get("default") else []
            return self._same(node, results, "CASE branches mix")
        if isinstance(node, exp.If):
            self._expect(node.this, Kind.BOOLEAN, "IF takes a condition")
            branches = [node.args["true"]]
            branches += [node.args["false"]] if node.args.get("false") else []
            return self._same(node, branches, "IF branches mix")
        if isinstance(node, exp.Coalesce | exp.Greatest | exp.Least | exp.Nullif):
            return self._same(node, self._operands(node), f"{node.key}() mixes")
        raise self.fail(node, f"{node.key.upper()} is not allowed")

    def _column(self, node: exp.Column) -> Kind:
        if node.table:
            return Kind.TEXT  # properties.<key> reads as text
        column = self.source.columns.get(node.name.lower())
        return (
            {
                ColumnKind.NUMBER: Kind.NUMBER,
                ColumnKind.DATE: Kind.DATE,
                ColumnKind.TIMESTAMP: Kind.TIMESTAMP,
            }.get(column, Kind.TEXT)
            if column is not None
            else Kind.NULL
        )

    @staticmethod
    def _operands(node: exp.Expression) -> list[exp.Expression]:
        return [child for child in node.iter_expressions() if not isinstance(child, exp.DataType)]

    def _children_of(self, node: exp.Expression, wanted: Kind | None) -> None:
        for child in self._operands(node):
            if wanted is None:
                self.kind(child)
            else:
                self._expect(child, wanted, f"{node.key}() needs {wanted}")

    def _expect(self, node: exp.Expression | None, wanted: Kind, message: str) -> None:
        if node is None:
            return
        found = self.kind(node)
        if found not in (wanted, Kind.NULL):
            raise self.fail(node, f"{message}; {node.sql()!r} is {found}")

    def _same(self, node: exp.Expression, operands: list[exp.Expression], message: str) -> Kind:
        """The common kind of operands that must agree; a string literal may stand for a date."""
        kinds = [(o, self.kind(o)) for o in operands]
        typed = [(o, k) for o, k in kinds if k is not Kind.NULL and not _is_text_literal(o)]
        first = typed[0][1] if typed else None
        for operand, found in kinds:
            if found is Kind.NULL or first is None:
                continue
            if _is_text_literal(operand) and first in _TIMES:
                continue  # '2025-01-01' against a date column: bound (and checked) as a date
            if not compatible(first, found):
                raise self.fail(node, f"{message} {first} and {found} ({operand.sql()!r})")
        if first is not None:
            return first
        return next((k for _, k in kinds if k is not Kind.NULL), Kind.NULL)


def _is_text_literal(node: exp.Expression) -> bool:
    node = _unparen(node)
    return isinstance(node, exp.Literal) and node.is_string


def require_kind(
    node: exp.Expression, source: DataSource, field: str, wanted: Kind, what: str
) -> None:
    """Raise unless `node` yields `wanted` (NULL-only expressions are caught elsewhere)."""
    found = KindChecker(source, field).kind(node)
    if found not in (wanted, Kind.NULL):
        raise MetricValidationError(field, f"{what}; {node.sql()!r} is {found}")
