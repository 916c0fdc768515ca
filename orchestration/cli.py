"""`metrics`: scripted backfills and single-period runs through Dagster, in this process.

    metrics backfill --grain weekly --start 2025-01-01 --end 2025-10-01
    metrics backfill --grain all --start 2025-01-01 --end 2025-10-01   (days, weeks, months)
    metrics aggregate --grain monthly --period 2025-09
    metrics demo
    metrics custom ...            (the custom metrics CLI)
    metrics serve / metrics tokens ...   (the HTTP API, serving.http.cli)

A backfill runs every partition of the grain that overlaps the half-open range [start, end)
(a week or month partly inside counts) as ONE Dagster run: one dbt invocation for the range.
Periods that have not ended yet, or start before METRICS_PARTITIONS_START, are skipped with a
note. `--period` is a day (YYYY-MM-DD), a week (any date in it, YYYY-MM-DD: the week that
contains it, per METRICS_WEEK_START) or a month (YYYY-MM).
"""

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from orchestration.partitions import Grain, available_keys, keys_overlapping, partition_key
from orchestration.settings import OrchestrationSettings

GRAIN_ALIASES = {
    "daily": Grain.DAY,
    "day": Grain.DAY,
    "weekly": Grain.WEEK,
    "week": Grain.WEEK,
    "monthly": Grain.MONTH,
    "month": Grain.MONTH,
}


class UsageError(ValueError):
    """A command line that names something impossible; printed without a traceback."""


def _grain(text: str) -> Grain:
    grain = GRAIN_ALIASES.get(text.strip().lower())
    if grain is None:
        raise argparse.ArgumentTypeError(f"unknown grain {text!r}: use daily, weekly or monthly")
    return grain


def _grains(text: str) -> list[Grain]:
    """`all` (daily, then weekly, then monthly) or one grain."""
    if text.strip().lower() == "all":
        return [Grain.DAY, Grain.WEEK, Grain.MONTH]
    try:
        return [_grain(text)]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"unknown grain {text!r}: use daily, weekly, monthly or all"
        ) from None


def _date(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid date: {error}") from None


def parse_period(grain: Grain, text: str, settings: OrchestrationSettings) -> str:
    """The partition key a `--period` names, or UsageError saying how to write it."""
    text = text.strip()
    if grain is Grain.MONTH:
        match = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
            raise UsageError(f"a month is written YYYY-MM (e.g. 2025-09), not {text!r}")
        return date(int(match.group(1)), int(match.group(2)), 1).isoformat()
    try:
        day = _date(text)
    except argparse.ArgumentTypeError as error:
        what = "a day" if grain is Grain.DAY else "a week (any date in it)"
        raise UsageError(f"{what} is written YYYY-MM-DD: {error}") from None
    if day < settings.partitions_start:  # also keeps week arithmetic away from year 1
        raise UsageError(
            f"{day} is before METRICS_PARTITIONS_START ({settings.partitions_start}): "
            "no partition holds it"
        )
    return partition_key(grain, day, settings.week_start_index)


def _available(grain: Grain, keys: list[str], settings: OrchestrationSettings) -> list[str]:
    existing = set(available_keys(grain, settings))
    return [key for key in keys if key in existing]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `metrics` (the `custom` subcommand is delegated unparsed)."""
    parser = argparse.ArgumentParser(
        prog="metrics",
        description="Run the metrics rollups through Dagster from the command line.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    backfill = commands.add_parser(
        "backfill", help="build every partition of a grain overlapping [start, end), in one run"
    )
    backfill.add_argument(
        "--grain",
        type=_grains,
        required=True,
        help="daily, weekly, monthly, or all (days first, then weeks, then months: one run each)",
    )
    backfill.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--end", type=_date, required=True, help="day after the last, YYYY-MM-DD")
    backfill.add_argument("--verbose", action="store_true", help="show Dagster and dbt logs")

    aggregate = commands.add_parser("aggregate", help="build one period of a grain")
    aggregate.add_argument("--grain", type=_grain, required=True, help="daily, weekly or monthly")
    aggregate.add_argument(
        "--period",
        required=True,
        help="day YYYY-MM-DD, week: any date in it YYYY-MM-DD, month YYYY-MM",
    )
    aggregate.add_argument("--verbose", action="store_true", help="show Dagster and dbt logs")

    commands.add_parser("demo", help="generate demo events, build everything, print a report")
    commands.add_parser("custom", help="custom metrics (see `metrics custom --help`)")
    commands.add_parser("serve", help="the HTTP API and dashboard page")
    commands.add_parser("tokens", help="API tokens: create, list, revoke")
    return parser


def _run(plan: list[tuple[Grain, list[str]]], verbose: bool) -> int:
    """One run per grain, in order, in this process; stops at the first failed run."""
    from orchestration.definitions import build_definitions
    from orchestration.instance import open_instance
    from orchestration.runner import printer, run_partition_range

    defs = build_definitions()
    with open_instance() as instance:
        for grain, keys in plan:
            run = run_partition_range(
                defs,
                grain,
                keys,
                instance,
                progress=printer(),
                verbose=verbose,
            )
            if not run.success:
                return 1
    return 0


def _backfill(args: argparse.Namespace, settings: OrchestrationSettings) -> int:
    if args.start >= args.end:
        raise UsageError(
            f"--start {args.start} must be before --end {args.end} (the range is half-open)"
        )
    today = datetime.now(UTC).date()
    if args.start >= today:
        raise UsageError(f"--start {args.start} is not in the past: no period from then has ended")
    # Periods that have not ended are not partitions: never look past tomorrow (this also keeps
    # the period arithmetic away from year 9999).
    end = min(args.end, today + timedelta(days=1))
    start = max(args.start, settings.partitions_start)
    if start != args.start:
        print(f"note: partitions start at METRICS_PARTITIONS_START ({start})", flush=True)
    if start >= end:
        what = args.grain[0].value if len(args.grain) == 1 else "period"
        raise UsageError(f"no complete {what} overlaps [{args.start}, {args.end})")
    plan: list[tuple[Grain, list[str]]] = []
    for grain in args.grain:
        wanted = keys_overlapping(grain, start, end, settings)
        keys = _available(grain, wanted, settings)
        skipped = [key for key in wanted if key not in keys]
        if skipped:
            print(
                f"note: skipping {len(skipped)} {grain.value}(s) that have not ended yet or "
                f"start before METRICS_PARTITIONS_START ({settings.partitions_start}): "
                f"{skipped[0]} .. {skipped[-1]}",
                flush=True,
            )
        if keys:
            plan.append((grain, keys))
        elif len(args.grain) == 1:
            raise UsageError(f"no complete {grain.value} overlaps [{args.start}, {args.end})")
    if not plan:
        raise UsageError(f"no complete period overlaps [{args.start}, {args.end})")
    return _run(plan, args.verbose)


def _aggregate(args: argparse.Namespace, settings: OrchestrationSettings) -> int:
    grain: Grain = args.grain
    key = parse_period(grain, args.period, settings)
    if grain is Grain.WEEK and key != args.period.strip():
        print(f"note: {args.period} is in the week starting {key}", flush=True)
    if not _available(grain, [key], settings):
        raise UsageError(
            f"{grain.value} {key} is not a partition: it has not ended yet or starts before "
            f"METRICS_PARTITIONS_START ({settings.partitions_start})"
        )
    return _run([(grain, [key])], args.verbose)


def _custom(argv: Sequence[str]) -> int:
    try:
        from custom_metrics.cli import main as custom_main
    except ImportError as error:
        print(f"error: the custom metrics CLI is not available: {error}", file=sys.stderr)
        return 2
    return int(custom_main(list(argv)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `metrics` console script; returns the exit code (2 for usage errors)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["custom"]:
        return _custom(args_list[1:])
    if args_list[:1] in (["serve"], ["tokens"]):
        from serving.http import cli as http_cli

        run = http_cli.serve_main if args_list[0] == "serve" else http_cli.tokens_main
        try:
            return run(args_list[1:])
        except SystemExit as exit_:  # argparse usage errors and --help
            return exit_.code if isinstance(exit_.code, int) else 2
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:  # argparse has printed the usage error (or the help)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        settings = OrchestrationSettings.from_env()
    except ValueError as error:  # bad configuration in the environment
        print(f"metrics: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "backfill":
            return _backfill(args, settings)
        if args.command == "aggregate":
            return _aggregate(args, settings)
    except UsageError as error:
        print(f"metrics {args.command}: error: {error}", file=sys.stderr)
        return 2
    from orchestration.demo import main as demo_main

    return demo_main()


if __name__ == "__main__":
    raise SystemExit(main())
