"""Allowlist validation of user-written SQL fragments (formulas, `where`, names).

sqlglot is a parser, not a sanitizer, so checks run in layers, each an allowlist:
1. characters: printable ASCII from a small set (no `;`, `#`, `$`, `?`, `:`, `\\`, quotes
   for identifiers, `%` only inside string literals; no Unicode: homoglyphs, zero-width and
   bidi characters cannot get in);
   no comment markers; bounded length and parenthesis depth, counted before parsing;
2. tokens: only the token types an expression needs (no SELECT, UNION, COPY, placeholders,
   dollar-quoting, comments);
3. the parsed AST: node types, functions, aggregates only where allowed, columns of the data
   source, JSON keys of `properties`, literal-only IN lists, bounded depth.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Final

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from custom_metrics.definitions import MAX_EXPRESSION_LENGTH
from custom_metrics.errors import MetricValidationError
from custom_metrics.kinds import KindChecker
from custom_metrics.sources import ColumnKind, DataSource

MAX_PAREN_DEPTH: Final = 16
MAX_TOKENS: Final = 600
MAX_AST_DEPTH: Final = 40
# Literals: text up to 200 characters, numbers up to 38 digits (DuckDB's widest DECIMAL) between
# 1e-30 and 1e37; LIKE patterns up to 100 characters with few wildcards (see check_like).
MAX_STRING_LITERAL: Final = 200
MAX_NUMBER_DIGITS: Final = 38
MAX_LIKE_PATTERN: Final = 100
MAX_LIKE_PERCENTS: Final = 10
MAX_BACKTRACKING_LIKE: Final = 30
IDENTIFIER_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
COLUMN_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
READ_DIALECT: Final = "postgres"

_ALLOWED_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\r\n_.,()*+-/<>=!'"
)
_CHAR_REASONS: Final = {
    ";": "semicolons are not allowed (a definition is one expression, never statements)",
    "#": "'#' is not allowed (comments and JSON path operators are not accepted)",
    "$": "'$' is not allowed (no dollar-quoting or $n placeholders)",
    "?": "'?' is not allowed (no placeholders or JSON operators)",
    ":": "':' is not allowed (no casts with :: and no :name placeholders)",
    "%": "'%' is only allowed inside a string literal (LIKE patterns); no %s placeholders",
    "\\": "backslashes are not allowed",
    '"': "quoted identifiers are not allowed; write plain column names",
    "`": "quoted identifiers are not allowed; write plain column names",
    "|": "'|' is not allowed (no concatenation or bitwise operators)",
    "@": "'@' is not allowed",
    "[": "brackets are not allowed",
    "]": "brackets are not allowed",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
}

_ALLOWED_TOKENS: Final = frozenset(
    {
        TokenType.VAR,
        TokenType.NUMBER,
        TokenType.STRING,
        TokenType.L_PAREN,
        TokenType.R_PAREN,
        TokenType.COMMA,
        TokenType.DOT,
        TokenType.STAR,
        TokenType.PLUS,
        TokenType.DASH,
        TokenType.SLASH,
        TokenType.EQ,
        TokenType.NEQ,
        TokenType.LT,
        TokenType.LTE,
        TokenType.GT,
        TokenType.GTE,
        TokenType.AND,
        TokenType.OR,
        TokenType.NOT,
        TokenType.IN,
        TokenType.IS,
        TokenType.NULL,
        TokenType.BETWEEN,
        TokenType.CASE,
        TokenType.WHEN,
        TokenType.THEN,
        TokenType.ELSE,
        TokenType.END,
        TokenType.TRUE,
        TokenType.FALSE,
        TokenType.LIKE,
        TokenType.ILIKE,
        TokenType.DISTINCT,
    }
)

# Row-level nodes: operators, conditions and a few deterministic scalar functions.
_SCALAR_NODES: Final[tuple[type[exp.Expression], ...]] = (
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
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
    exp.Case,
    exp.If,
    exp.Coalesce,
    exp.Nullif,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Greatest,
    exp.Least,
    exp.Boolean,
    exp.Null,
)
AGGREGATE_NODES: Final[tuple[type[exp.Expression], ...]] = (
    exp.Count,
    exp.CountIf,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
)
_COMPARISONS: Final = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_NUMERIC_NODES: Final = (
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
_FRIENDLY: Final[dict[type[exp.Expression], str]] = {
    exp.Select: "subqueries and SELECT are not allowed",
    exp.Subquery: "subqueries are not allowed",
    exp.Union: "UNION is not allowed",
    exp.Exists: "EXISTS is not allowed",
    exp.Cast: "casts are not allowed",
    exp.TryCast: "casts are not allowed",
    exp.Window: "window functions are not allowed",
    exp.Filter: "aggregate FILTER clauses are not allowed; use count_if or CASE",
    exp.Command: "statements are not allowed",
    exp.Star: "'*' is only allowed as count(*)",
    exp.Distinct: "DISTINCT is only allowed as count(distinct <expression>)",
    exp.Escape: "LIKE ... ESCAPE is not allowed",
    exp.Interval: "intervals are not allowed; use the period instead",
    exp.DPipe: "concatenation is not allowed",
}


class Aggregates(Enum):
    """Where aggregate functions may appear in the expression being checked."""

    FORBIDDEN = "forbidden"
    REQUIRED_AROUND_COLUMNS = "ratio"


@dataclass(frozen=True)
class ParsedExpression:
    """A user expression that passed every check, with the text it came from."""

    tree: exp.Expression
    text: str
    field: str


def plain_number(text: str) -> Decimal:
    """A number literal as an exact Decimal in plain form (`1e3` -> 1000, never 1E+3).

    DuckDB binds a Decimal with a positive exponent as if it had none (1E+3 became 1), so every
    literal is normalised here; ValueError says why a literal is refused.
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"bad number {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"bad number {text!r}")
    if value and not -30 <= value.adjusted() <= MAX_NUMBER_DIGITS - 2:
        raise ValueError(f"number {text!r} is out of range (1e-30 .. 1e{MAX_NUMBER_DIGITS - 2})")
    plain = format(value, "f")
    if sum(c.isdigit() for c in plain) > MAX_NUMBER_DIGITS:
        raise ValueError(f"number {text!r} has more than {MAX_NUMBER_DIGITS} digits")
    return Decimal(plain)


def check_characters(text: str, field: str) -> None:
    """Layer 1: length, character allowlist, comment markers, parenthesis depth."""
    if not text.strip():
        raise MetricValidationError(field, "is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise MetricValidationError(
            field, f"is {len(text)} characters long; the limit is {MAX_EXPRESSION_LENGTH}"
        )
    in_string = False
    for index, char in enumerate(text):
        if char == "'":
            in_string = not in_string  # '' inside a literal toggles twice: still inside
        if char in _ALLOWED_CHARS or (char == "%" and in_string):
            continue  # '%' only as a LIKE wildcard inside a (bound) string literal
        if char in _CHAR_REASONS:
            raise MetricValidationError(field, _CHAR_REASONS[char], index)
        code = f"U+{ord(char):04X}"
        if ord(char) < 0x20 or ord(char) == 0x7F:
            reason = f"control character {code} is not allowed"
        elif ord(char) > 0x7E:
            label = unicodedata.name(char, "unnamed")
            reason = (
                f"non-ASCII character {code} ({label}) is not allowed; expressions are plain "
                "ASCII (use filters for values with other characters)"
            )
        else:
            reason = f"character {char!r} is not allowed"
        raise MetricValidationError(field, reason, index)
    for marker in ("--", "/*", "*/"):
        index = text.find(marker)
        if index >= 0:
            raise MetricValidationError(field, f"comments ({marker!r}) are not allowed", index)
    depth = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                raise MetricValidationError(
                    field, f"parentheses nest deeper than {MAX_PAREN_DEPTH} levels", index
                )
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise MetricValidationError(field, "unbalanced ')'", index)
    if depth:
        raise MetricValidationError(field, "unbalanced '(': missing ')'")


def check_tokens(text: str, field: str) -> list[Token]:
    """Layer 2: tokenize and accept only the token types an expression needs."""
    try:
        tokens = Dialect.get_or_raise(READ_DIALECT).tokenize(text)
    except (TokenError, ValueError) as error:
        raise MetricValidationError(field, f"cannot be read: {error}") from None
    if len(tokens) > MAX_TOKENS:
        raise MetricValidationError(field, f"has more than {MAX_TOKENS} tokens")
    previous: Token | None = None
    for token in tokens:
        if token.comments:
            raise MetricValidationError(field, "comments are not allowed", token.start)
        after_dot = previous is not None and previous.token_type is TokenType.DOT
        if token.token_type not in _ALLOWED_TOKENS and not (
            after_dot and IDENTIFIER_RE.fullmatch(token.text)
        ):
            raise MetricValidationError(
                field, f"{token.text.upper()!r} is not allowed here", token.start
            )
        if token.token_type is TokenType.VAR and not IDENTIFIER_RE.fullmatch(token.text):
            raise MetricValidationError(field, f"bad name {token.text!r}", token.start)
        previous = token
    return tokens


def parse_expression(text: str, field: str) -> exp.Expression:
    """Layers 1 and 2, then parse into one sqlglot expression."""
    check_characters(text, field)
    check_tokens(text, field)
    try:
        trees = sqlglot.parse(text, read=READ_DIALECT)
    except ParseError as error:
        detail = error.errors[0] if error.errors else {}
        near = str(detail.get("highlight") or "")
        message = str(detail.get("description") or "cannot be parsed")
        raise MetricValidationError(
            field, f"{message}" + (f" near {near!r}" if near else ""), _position(text, detail)
        ) from None
    except (TokenError, RecursionError):
        raise MetricValidationError(field, "cannot be parsed (too deeply nested?)") from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Expression):
        raise MetricValidationError(field, "must be exactly one expression")
    tree = trees[0]
    _check_depth(tree, field)
    return tree


def _position(text: str, detail: dict[str, object]) -> int | None:
    context = detail.get("start_context")
    return len(context) if isinstance(context, str) and text.startswith(context) else None


def _check_depth(tree: exp.Expression, field: str) -> None:
    stack: list[tuple[exp.Expression, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            raise MetricValidationError(
                field, f"expression nests deeper than {MAX_AST_DEPTH} levels"
            )
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def node_position(node: exp.Expression, text: str) -> int | None:
    """Best-effort character offset of a node in the text it was parsed from."""
    start = node.meta.get("start") if node.meta else None
    if isinstance(start, int):
        return start
    for child in node.walk():
        start = child.meta.get("start") if child.meta else None
        if isinstance(start, int):
            return start
    return None


def resolve_reference(name: str, source: DataSource, field: str) -> tuple[str, str | None]:
    """A dimension or filter name -> (column, JSON key or None); only known columns pass."""
    if not isinstance(name, str) or not name:
        raise MetricValidationError(field, "must be a column name")
    check_characters(name, field)
    column, dot, key = name.partition(".")
    if dot:
        if source.json_column is None:
            raise MetricValidationError(
                field, f"{name!r}: {source.name} has no JSON column; write a plain column name"
            )
        if column.lower() != source.json_column:
            raise MetricValidationError(
                field,
                f"{name!r}: only {source.json_column}.<key> may have a dot on {source.name}",
            )
        if not IDENTIFIER_RE.fullmatch(key):
            raise MetricValidationError(
                field, f"JSON key {key!r} must be letters, digits and underscores"
            )
        return source.json_column, key
    column = column.lower()
    if not COLUMN_RE.fullmatch(column) or column not in source.columns:
        raise MetricValidationError(field, f"unknown column {name!r} for data source {source.name}")
    if column == source.json_column:
        raise MetricValidationError(field, f"use {column}.<key> to address a JSON key")
    return column, None


def column_kind(node: exp.Expression, source: DataSource) -> ColumnKind | None:
    """The kind of a (checked) column node; JSON keys are text."""
    if not isinstance(node, exp.Column):
        return None
    if node.table:
        return ColumnKind.TEXT
    return source.columns.get(node.name.lower())


def _children(node: exp.Expression) -> Iterator[exp.Expression]:
    yield from node.iter_expressions()


class ExpressionChecker:
    """Layer 3: walk a parsed expression against the node, function and column allowlists."""

    def __init__(self, source: DataSource, field: str, text: str) -> None:
        self.source = source
        self.field = field
        self.text = text

    def fail(self, node: exp.Expression, message: str) -> MetricValidationError:
        return MetricValidationError(self.field, message, node_position(node, self.text))

    def check(self, tree: exp.Expression, aggregates: Aggregates) -> None:
        """Raise MetricValidationError at the first node that is not allowed."""
        found_aggregate = False
        stack: list[tuple[exp.Expression, exp.Expression | None, bool]] = [(tree, None, False)]
        while stack:
            node, parent, in_aggregate = stack.pop()
            if isinstance(node, exp.Column):
                self._check_column(node, aggregates, in_aggregate)
                continue
            if isinstance(node, exp.Literal):
                self._check_literal(node)
                continue
            if isinstance(node, AGGREGATE_NODES):
                if aggregates is Aggregates.FORBIDDEN:
                    raise self.fail(
                        node,
                        f"aggregate {node.key}() is not allowed here (aggregates go in the "
                        "formula of a RATIO, or wrap the whole formula of its own metric type)",
                    )
                if in_aggregate:
                    raise self.fail(node, "aggregates cannot be nested")
                found_aggregate = True
                self._check_aggregate(node)
                stack.extend((c, node, True) for c in _children(node))
                continue
            if isinstance(node, exp.Star):
                if not isinstance(parent, exp.Count):
                    raise self.fail(node, _FRIENDLY[exp.Star])
                continue
            if isinstance(node, exp.Distinct):
                if not isinstance(parent, exp.Count) or node.args.get("on"):
                    raise self.fail(node, _FRIENDLY[exp.Distinct])
                if len(node.expressions) != 1:
                    raise self.fail(node, "count(distinct ...) takes exactly one expression")
                stack.extend((c, node, in_aggregate) for c in _children(node))
                continue
            if not isinstance(node, _SCALAR_NODES):
                raise self.fail(node, self._reason(node))
            if isinstance(node, exp.In):
                self._check_in(node)
            if isinstance(node, exp.Like | exp.ILike):
                self._check_like(node)
            if isinstance(node, exp.Round):
                self._check_round(node)
            if isinstance(node, exp.Is) and not isinstance(node.expression, exp.Null | exp.Boolean):
                raise self.fail(node, "IS takes NULL, TRUE or FALSE; compare values with =")
            if isinstance(node, (*_COMPARISONS, exp.Between, exp.In)):
                self._check_json_comparison(node)
            if isinstance(node, _NUMERIC_NODES):
                self._check_json_arithmetic(node)
            stack.extend((c, node, in_aggregate) for c in _children(node))
        if aggregates is Aggregates.REQUIRED_AROUND_COLUMNS and not found_aggregate:
            raise MetricValidationError(self.field, "each side of a RATIO needs an aggregate")
        KindChecker(self.source, self.field).kind(tree)

    def _check_literal(self, node: exp.Literal) -> None:
        if node.is_string:
            if len(str(node.this)) > MAX_STRING_LITERAL:
                raise self.fail(
                    node, f"a quoted text is longer than {MAX_STRING_LITERAL} characters"
                )
            return
        try:
            plain_number(str(node.this))
        except ValueError as error:
            raise self.fail(node, str(error)) from None

    def _check_round(self, node: exp.Round) -> None:
        """round(x, digits): digits is a whole number literal from -30 to 30 (both warehouses
        take an integer there; DuckDB has no round(bigint, decimal))."""
        digits = node.args.get("decimals")
        if digits is None:
            return
        value = digits.this if isinstance(digits, exp.Neg) else digits
        whole = isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()
        if not whole or int(value.this) > 30:
            raise self.fail(
                node, "round() takes its digits as a whole number from -30 to 30, e.g. 2"
            )

    def _check_like(self, node: exp.Expression) -> None:
        """Bound LIKE / ILIKE patterns: DuckDB matches some of them in exponential time.

        Measured on DuckDB 1.x: `'a'*44 like '_%_%..._%b'` (11 pairs) takes about 27 s, and
        ILIKE backtracks on every `%` even without `_`. A pattern must be one quoted text of at
        most 100 characters; with `_`, or under ILIKE, at most one `%` may stand before the
        trailing ones, and then the pattern has at most 30 characters (matching costs about the
        text's length times the pattern's: 2048 texts of 1,000 characters in well under 1 s).
        """
        op = "ILIKE" if isinstance(node, exp.ILike) else "LIKE"
        pattern = node.expression
        while isinstance(pattern, exp.Paren):
            pattern = pattern.this
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            raise self.fail(node, f"{op} needs a quoted pattern such as 'a%', not an expression")
        text = str(pattern.this)
        if len(text) > MAX_LIKE_PATTERN:
            raise self.fail(pattern, f"{op} pattern is longer than {MAX_LIKE_PATTERN} characters")
        inner = text.rstrip("%").count("%")
        if text.count("%") > MAX_LIKE_PERCENTS:
            raise self.fail(pattern, f"{op} pattern has more than {MAX_LIKE_PERCENTS} '%'")
        if inner > 1 and ("_" in text or op == "ILIKE"):
            raise self.fail(
                pattern,
                f"{op} pattern {text!r} is too expensive to match: with '_' or ILIKE, at most "
                "one '%' may come before the trailing ones (e.g. '%abc%' or 'a_c%')",
            )
        if inner == 1 and ("_" in text or op == "ILIKE") and len(text) > MAX_BACKTRACKING_LIKE:
            raise self.fail(
                pattern,
                f"{op} pattern {text!r} is too expensive to match: with '_' or ILIKE and a '%' "
                f"before the end, a pattern has at most {MAX_BACKTRACKING_LIKE} characters",
            )

    def _reason(self, node: exp.Expression) -> str:
        if isinstance(node, exp.Anonymous):
            return f"unknown function {node.name}() is not allowed"
        for kind, message in _FRIENDLY.items():
            if isinstance(node, kind):
                return message
        if isinstance(node, exp.JSONExtract | exp.JSONExtractScalar | exp.JSONBExtract):
            return "JSON operators are not allowed; write properties.<key>"
        if isinstance(node, exp.Func):
            return f"function {node.sql_name().lower()}() is not allowed"
        return f"{node.key.upper()} is not allowed"

    def _check_column(self, node: exp.Column, aggregates: Aggregates, in_agg: bool) -> None:
        for part in node.parts:
            if part.args.get("quoted") or not IDENTIFIER_RE.fullmatch(part.name):
                raise self.fail(node, f"bad name {part.name!r}")
        if node.args.get("db") or node.args.get("catalog"):
            raise self.fail(node, f"{node.sql()!r}: only <column> or properties.<key> is allowed")
        name = node.table + "." + node.name if node.table else node.name
        resolve_reference(name, self.source, self.field)
        if aggregates is Aggregates.REQUIRED_AROUND_COLUMNS and not in_agg:
            raise self.fail(node, f"column {name!r} must be inside an aggregate in a RATIO formula")

    def _check_aggregate(self, node: exp.Expression) -> None:
        arg = node.this
        if isinstance(node, exp.Count):
            if arg is None:
                raise self.fail(node, "count() needs an argument: count(*) or count(column)")
        elif isinstance(arg, exp.Star | exp.Distinct):
            raise self.fail(node, f"{node.key}() cannot take '*' or DISTINCT")
        extra = [k for k, v in node.args.items() if k not in ("this", "big_int") and v]
        if extra:
            raise self.fail(node, f"{node.key}() takes one argument")

    def _check_in(self, node: exp.In) -> None:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise self.fail(node, "IN takes a list of literal values only")
        for item in node.expressions:
            value = item.this if isinstance(item, exp.Neg) else item
            if not isinstance(value, exp.Literal | exp.Null | exp.Boolean):
                raise self.fail(item, "IN takes a list of literal values only")

    def _check_json_arithmetic(self, node: exp.Expression) -> None:
        for child in node.iter_expressions():
            while isinstance(child, exp.Paren):
                child = child.this
            if isinstance(child, exp.Column) and child.table:
                raise self.fail(
                    child, "JSON keys are text: arithmetic on properties.<key> is not supported"
                )

    def _check_json_comparison(self, node: exp.Expression) -> None:
        operands = [node.this, node.args.get("expression"), node.args.get("low")]
        operands += [node.args.get("high"), *node.expressions]
        has_json = any(isinstance(o, exp.Column) and o.table for o in operands)
        if not has_json:
            return
        for operand in operands:
            value = operand.this if isinstance(operand, exp.Neg) else operand
            if isinstance(value, exp.Literal) and not value.is_string:
                raise self.fail(
                    value,
                    "JSON keys are text: compare properties.<key> with a quoted string",
                )
