"""The custom-metrics CLI acts as the local operator, visibly, and never as a user it is told
about on the command line or in the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_metrics import CustomMetricService, Principal
from custom_metrics.cli import main
from orchestration.cli import main as metrics_main
from tests.custom_metrics.support import duckdb_warehouse, load_sources, make_events, make_rollups

PRIVATE = {
    "name": "carol's secret",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
    "where": "actor_id = 'u7'",
}


@pytest.fixture()
def carols_definition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A DuckDB warehouse (through the environment) holding one PRIVATE definition of carol."""
    path = tmp_path / "identity.duckdb"
    wh = duckdb_warehouse(path)
    events = make_events(100, seed=3)
    load_sources(wh, events, make_rollups(events))
    stored = CustomMetricService(wh, Principal("carol", "blue", "acme")).create_definition(PRIVATE)
    wh.close()
    for name in ("METRICS_USER", "METRICS_TEAM", "METRICS_ORG", "METRICS_ADMIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("METRICS_TARGET", "duckdb")
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(path))
    monkeypatch.setenv("METRICS_SCHEMA", "metrics")
    return stored.definition_id


@pytest.mark.parametrize(
    "claim",
    [
        ["--user", "carol"],
        ["--user=carol"],
        ["--team", "blue"],
        ["--org", "acme"],
        ["--admin"],
        ["--user", "carol", "--team", "blue", "--org", "acme"],
    ],
)
def test_identity_flags_are_refused(
    claim: list[str], carols_definition: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*claim, "list"]) == 2
    captured = capsys.readouterr()
    assert carols_definition not in captured.out
    (line,) = captured.err.strip().splitlines()
    assert "is not accepted" in line and "local operator" in line and claim[0].split("=")[0] in line


@pytest.mark.parametrize("variable", ["METRICS_USER", "METRICS_TEAM", "METRICS_ORG"])
def test_identity_variables_are_refused(
    variable: str,
    carols_definition: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, "carol")
    assert main(["list"]) == 2
    captured = capsys.readouterr()
    assert carols_definition not in captured.out
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("metrics custom: error: " + variable)
    from custom_metrics.identity import IdentityError, cli_principal

    with pytest.raises(IdentityError, match=variable):
        cli_principal()


def test_through_the_metrics_command_too(
    carols_definition: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert metrics_main(["custom", "--user", "carol", "list"]) == 2
    assert carols_definition not in capsys.readouterr().out


def test_the_cli_is_the_operator_and_says_so(
    carols_definition: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from custom_metrics import OPERATOR
    from custom_metrics.identity import cli_principal

    assert cli_principal() == OPERATOR and OPERATOR.is_system
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == "acting as the local operator (admin)"
    assert carols_definition in captured.out and "1 definitions" in captured.out
    assert (
        main(["calculate", carols_definition, "--start", "2025-01-01", "--end", "2025-01-03"]) == 0
    )
    assert "SUCCESS" in capsys.readouterr().out


def test_validate_and_compile_need_no_identity(
    carols_definition: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--examples"]) == 0
    assert "local operator" not in capsys.readouterr().err
