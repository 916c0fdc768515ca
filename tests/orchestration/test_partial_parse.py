"""Dagster's dbt invocations reuse the saved parse, whatever their window (orchestration.dbt_env).

A window passed as `--vars` would make dbt parse the whole project again on every run; passed
through the environment and read only while executing, it leaves the saved parse valid.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from orchestration.dbt_env import dbt_window
from orchestration.manifest import PARTIAL_PARSE, ensure_manifest, parse_home, save_parse
from orchestration.resources import dbt_resource


def _dbt_event_names(invocation: object) -> list[str]:
    return [
        event.raw_event["info"]["name"]
        for event in invocation.stream_raw_events()  # type: ignore[attr-defined]
    ]


def test_invocations_with_different_windows_do_not_parse_the_project_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_TARGET", "duckdb")
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    ensure_manifest()
    dbt = dbt_resource()
    # The saved parse may come from another environment (another warehouse file): then the
    # first invocation parses everything, and its parse is kept, as a rollup run keeps it.
    with dbt_window(date(2023, 12, 1), date(2024, 1, 1)):
        first = dbt.cli(["parse"], raise_on_error=True)
    first.wait()
    save_parse(first.target_path)
    shutil.rmtree(first.target_path)
    assert (parse_home() / PARTIAL_PARSE).exists()
    for start, end in [(date(2024, 1, 1), date(2024, 2, 1)), (date(2024, 3, 4), date(2024, 3, 11))]:
        with dbt_window(start, end):
            invocation = dbt.cli(["parse"], raise_on_error=True)
        assert "UnableToPartialParse" not in _dbt_event_names(invocation), (start, end)
        assert invocation.is_successful()
        shutil.rmtree(invocation.target_path)
