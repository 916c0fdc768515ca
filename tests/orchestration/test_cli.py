"""The `metrics` command line: argument checking and period formats (no dbt runs here; a real
backfill through the CLI is in test_rollups_duckdb)."""

from __future__ import annotations

import sys
import types

import pytest

from orchestration.cli import UsageError, main, parse_period
from orchestration.partitions import Grain
from orchestration.settings import OrchestrationSettings


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_WEEK_START", "monday")
    monkeypatch.setenv("METRICS_PARTITIONS_START", "2024-01-01")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["backfill", "--grain", "hourly", "--start", "2025-01-01", "--end", "2025-02-01"],
            "unknown grain 'hourly': use daily, weekly, monthly or all",
        ),
        (
            ["backfill", "--grain", "weekly", "--start", "2025-1-1", "--end", "2025-02-01"],
            "'2025-1-1' is not a date written YYYY-MM-DD",
        ),
        (
            ["backfill", "--grain", "weekly", "--start", "2025-02-30", "--end", "2025-03-01"],
            "'2025-02-30' is not a valid date",
        ),
        (
            ["backfill", "--grain", "weekly", "--start", "2025-03-01", "--end", "2025-03-01"],
            "--start 2025-03-01 must be before --end 2025-03-01",
        ),
        (
            ["backfill", "--grain", "daily", "--start", "2020-01-01", "--end", "2020-02-01"],
            "no complete day overlaps [2020-01-01, 2020-02-01)",
        ),
        (
            ["aggregate", "--grain", "monthly", "--period", "2025-9"],
            "a month is written YYYY-MM (e.g. 2025-09), not '2025-9'",
        ),
        (["aggregate", "--grain", "monthly", "--period", "2025-13"], "a month is written YYYY-MM"),
        (["aggregate", "--grain", "daily", "--period", "2025-09"], "a day is written YYYY-MM-DD"),
        (
            ["aggregate", "--grain", "weekly", "--period", "2099-01-01"],
            "week 2098-12-29 is not a partition: it has not ended yet",
        ),
        (
            ["backfill", "--grain", "weekly", "--start", "9999-12-01", "--end", "9999-12-31"],
            "--start 9999-12-01 is not in the past",
        ),
        (
            ["backfill", "--grain", "monthly", "--start", "0001-01-01", "--end", "0001-03-01"],
            "no complete month overlaps [0001-01-01, 0001-03-01)",
        ),
        (["aggregate", "--grain", "monthly", "--period", "0000-01"], "a month is written YYYY-MM"),
        (
            ["aggregate", "--grain", "weekly", "--period", "0001-01-01"],
            "0001-01-01 is before METRICS_PARTITIONS_START (2024-01-01)",
        ),
        (
            ["aggregate", "--grain", "monthly", "--period", "9999-12"],
            "month 9999-12-01 is not a partition: it has not ended yet",
        ),
        (["aggregate", "--grain", "daily"], "the following arguments are required: --period"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_are_clear_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = _run(argv, capsys)
    assert code == 2
    assert message in output, output


def test_bad_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METRICS_WEEK_START", "someday")
    code, output = _run(["aggregate", "--grain", "daily", "--period", "2025-01-01"], capsys)
    assert code == 2 and "configuration error: METRICS_WEEK_START" in output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("METRICS_RETRY_DELAY_SECONDS", "nan"),
        ("METRICS_RETRY_DELAY_SECONDS", "inf"),
        ("METRICS_RETRY_DELAY_SECONDS", "1e400"),
        ("METRICS_RETRY_DELAY_SECONDS", "-1"),
        ("METRICS_MAX_RETRIES", "1" + "0" * 30),
        ("METRICS_PARTITIONS_START", "9999-12-31"),
        ("METRICS_PARTITIONS_START", "0001-01-01"),
        ("METRICS_PARTITIONS_START", "2024-13-01"),
    ],
)
def test_settings_out_of_range_are_one_line_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    code, output = _run(["aggregate", "--grain", "daily", "--period", "2025-01-01"], capsys)
    assert code == 2
    assert f"configuration error: {variable}" in output, output
    assert "Traceback" not in output and len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("grain", "text", "key"),
    [
        (Grain.DAY, "2025-09-14", "2025-09-14"),
        (Grain.WEEK, "2025-09-14", "2025-09-08"),  # a Sunday: the week starting Monday 8th
        (Grain.WEEK, "2025-09-08", "2025-09-08"),
        (Grain.MONTH, "2025-09", "2025-09-01"),
        (Grain.MONTH, " 2024-12 ", "2024-12-01"),
    ],
)
def test_period_formats(grain: Grain, text: str, key: str) -> None:
    assert parse_period(grain, text, OrchestrationSettings.from_env()) == key


def test_week_periods_follow_the_week_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_WEEK_START", "sunday")
    settings = OrchestrationSettings.from_env()
    assert parse_period(Grain.WEEK, "2025-09-14", settings) == "2025-09-14"
    assert parse_period(Grain.WEEK, "2025-09-13", settings) == "2025-09-07"
    with pytest.raises(UsageError, match="a week"):
        parse_period(Grain.WEEK, "14.09.2025", settings)


def test_custom_subcommand_delegates_to_the_custom_metrics_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[list[str]] = []
    fake = types.ModuleType("custom_metrics.cli")
    fake.main = lambda argv: received.append(list(argv)) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "custom_metrics.cli", fake)
    assert main(["custom", "list", "--format", "json"]) == 0
    assert received == [["list", "--format", "json"]]


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _run(["--help"], capsys)
    assert code == 0
    for command in ("backfill", "aggregate", "demo", "custom"):
        assert command in output


def test_backfill_all_means_days_then_weeks_then_months() -> None:
    from orchestration.cli import build_parser

    args = build_parser().parse_args(
        ["backfill", "--grain", "all", "--start", "2025-01-01", "--end", "2025-02-01"]
    )
    assert args.grain == [Grain.DAY, Grain.WEEK, Grain.MONTH]
