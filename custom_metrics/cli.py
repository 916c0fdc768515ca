"""`metrics custom ...`: validate, compile, test, create, list and calculate definitions.

`main(argv)` is wired under the project's `metrics` command; it prints plain-text tables and
returns 0 on success, 1 when a definition is rejected or a run fails, 2 on usage or
configuration errors. It always acts as the local operator (custom_metrics.identity).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from custom_metrics.compiler import DIALECTS, compile_metric, validate_definition
from custom_metrics.definitions import MetricDefinition, load_definitions, load_examples
from custom_metrics.errors import (
    MetricExecutionError,
    MetricNotFoundError,
    MetricPermissionError,
    MetricValidationError,
)
from custom_metrics.identity import (
    OPERATOR_NOTICE,
    IdentityError,
    cli_principal,
    refuse_identity_claims,
)
from custom_metrics.service import CustomMetricService
from warehouse import WarehouseConfig, connect
from warehouse.config import WarehouseConfigError
from warehouse.connection import WarehouseBusyError, WarehouseUnavailableError


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | Decimal) and not (
        isinstance(value, Decimal) and value == value.to_integral_value()
    ):
        text = f"{float(value):.6f}".rstrip("0").rstrip(".")
        return text or "0"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items()) or "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table with a header rule; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def _definitions(args: argparse.Namespace) -> list[tuple[str, MetricDefinition]]:
    found: list[tuple[str, MetricDefinition]] = []
    if getattr(args, "examples", False):
        found.extend(load_examples().items())
    for file in args.files:
        for index, definition in enumerate(load_definitions(file)):
            found.append((f"{Path(file).name}#{index}" if index else Path(file).name, definition))
    if not found:
        raise MetricValidationError("files", "give YAML files (or --examples)")
    return found


@contextmanager
def _service(args: argparse.Namespace) -> Iterator[CustomMetricService]:
    principal = cli_principal()
    print(OPERATOR_NOTICE, file=sys.stderr)
    with connect(WarehouseConfig(), wait_seconds=10) as warehouse:
        yield CustomMetricService(warehouse, principal)


def _answered_from(source: str | None, fallback_reason: str | None) -> str:
    """The line saying what was read, and why not the rollups when they were passed over."""
    line = f"answered from {source or 'events'}"
    return f"{line} ({fallback_reason})" if fallback_reason else line


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    rows, problems = [], []
    for origin, definition in _definitions(args):
        try:
            validate_definition(definition)  # every warehouse
            status = "ok"
        except MetricValidationError as error:
            status = "REJECTED"
            problems.append(f"{origin}: {error}")
        d = definition
        rows.append((origin, d.name, d.metric_type.value, d.data_source, status))
    print(format_table(["file", "name", "type", "source", "result"], rows), file=out)
    for problem in problems:
        print(f"REJECTED {problem}", file=out)
    print(f"\n{len(rows) - len(problems)} valid, {len(problems)} rejected", file=out)
    return 1 if problems else 0


def _cmd_compile(args: argparse.Namespace, out: TextIO) -> int:
    dialect = args.dialect or WarehouseConfig().target
    for origin, definition in _definitions(args):
        compiled = compile_metric(
            definition, dialect, args.start, args.end, schema=WarehouseConfig().schema
        )
        print(f"-- {origin}: {definition.name} ({dialect})", file=out)
        print(compiled.sql, file=out)
        params = [(name, type(v).__name__, v) for name, v in compiled.params.items()]
        print(format_table(["parameter", "type", "value"], params), file=out)
        print(file=out)
    return 0


def _cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    with _service(args) as service:
        for origin, definition in _definitions(args):
            run = service.test_metric_definition(definition, args.start, args.end)
            print(f"{origin}: {definition.name}", file=out)
            print(format_table(run.columns, run.rows[: args.limit]), file=out)
            more = f" (showing {args.limit})" if len(run.rows) > args.limit else ""
            print(
                f"{len(run.rows)} rows{more}, {run.duration_ms} ms, cost class "
                f"{run.cost.cost_class} ({run.cost.unit} {run.cost.estimate:,.0f}); "
                "nothing saved",
                file=out,
            )
            print(_answered_from(run.answered_from, run.fallback_reason) + "\n", file=out)
    return 0


def _cmd_create(args: argparse.Namespace, out: TextIO) -> int:
    with _service(args) as service:
        rows = []
        for _, definition in _definitions(args):
            stored = service.create_definition(definition)
            d = stored.definition
            rows.append((stored.definition_id, stored.version, d.name, d.visibility.value, d.owner))
    print(format_table(["id", "version", "name", "visibility", "owner"], rows), file=out)
    return 0


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    with _service(args) as service:
        rows = []
        for stored in service.list_definitions(include_inactive=args.all):
            d = stored.definition
            usage = service.store.usage(stored.definition_id)
            rows.append(
                (
                    stored.definition_id,
                    stored.version,
                    d.name,
                    d.metric_type.value,
                    d.data_source,
                    d.visibility.value,
                    d.owner,
                    d.is_active,
                    usage.use_count if usage else 0,
                    usage.last_used_at if usage else None,
                )
            )
    headers = ["id", "ver", "name", "type", "source", "visibility", "owner", "active"]
    print(format_table([*headers, "uses", "last used"], rows), file=out)
    print(f"\n{len(rows)} definitions", file=out)
    return 0


def _cmd_calculate(args: argparse.Namespace, out: TextIO) -> int:
    with _service(args) as service:
        result = service.calculate_metric(args.definition_id, args.start, args.end)
    dims = list(result.values[0].dimensions) if result.values else []
    rows = [
        (v.period_start, v.period_end, *(v.dimensions[k] for k in dims), v.value)
        for v in result.values
    ]
    print(format_table(["period_start", "period_end", *dims, "value"], rows), file=out)
    cost = result.cost
    print(
        f"\n{result.status}: {len(rows)} values for {result.definition_id} v"
        f"{result.definition_version}, {result.duration_ms} ms"
        + (f", cost class {cost.cost_class}" if cost else ""),
        file=out,
    )
    print(_answered_from(result.answered_from, result.fallback_reason), file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so the project's `metrics` command can embed it)."""
    parser = argparse.ArgumentParser(
        prog="metrics custom",
        description="Custom metric definitions compiled to safe SQL. Acts as the local "
        "operator (admin); per-user access goes through API tokens and `metrics serve`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def files(p: argparse.ArgumentParser) -> None:
        p.add_argument("files", nargs="*", help="YAML files with definitions")
        p.add_argument("--examples", action="store_true", help="the shipped seed examples")

    def period(p: argparse.ArgumentParser, required: bool = False) -> None:
        p.add_argument("--start", required=required, help="period start, YYYY-MM-DD (inclusive)")
        p.add_argument("--end", required=required, help="period end, YYYY-MM-DD (exclusive)")

    p = sub.add_parser("validate", help="check definitions (every warehouse); no database")
    files(p)
    p = sub.add_parser("compile", help="print the SQL and parameters")
    files(p)
    period(p)
    p.add_argument("--dialect", choices=DIALECTS)
    p = sub.add_parser("test", help="run on a sample period without saving")
    files(p)
    period(p)
    p.add_argument("--limit", type=int, default=50)
    p = sub.add_parser("create", help="store definitions (version 1)")
    files(p)
    p = sub.add_parser("list", help="definitions visible to you")
    p.add_argument("--all", action="store_true", help="include inactive definitions")
    p = sub.add_parser("calculate", help="compute, store and audit one definition")
    p.add_argument("definition_id")
    period(p, required=True)
    return parser


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "validate": _cmd_validate,
    "compile": _cmd_compile,
    "test": _cmd_test,
    "create": _cmd_create,
    "list": _cmd_list,
    "calculate": _cmd_calculate,
}


def main(argv: list[str] | None = None) -> int:
    """Run one `metrics custom` command; returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        refuse_identity_claims(arguments, os.environ)
    except IdentityError as error:
        print(f"metrics custom: error: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(arguments)
    try:
        return _COMMANDS[args.command](args, sys.stdout)
    except MetricValidationError as error:
        print(f"rejected: {error}", file=sys.stderr)
    except (MetricPermissionError, MetricNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
    except MetricExecutionError as error:
        print(f"failed: {error}", file=sys.stderr)
    except (WarehouseConfigError, WarehouseUnavailableError, WarehouseBusyError) as error:
        print(f"metrics custom: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
