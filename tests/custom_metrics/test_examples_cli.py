"""The seed examples run and match plain Python; the CLI prints its tables end to end."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import compile_metric, load_examples
from custom_metrics.cli import format_table, main
from tests.custom_metrics.journeys import funnel_reference, retention_reference
from tests.custom_metrics.support import (
    aggregate,
    as_result,
    assert_same,
    duckdb_warehouse,
    grain_periods,
    load_sources,
    make_events,
    make_rollups,
    percent,
    ratio,
    series_reference,
    utc,
)
from warehouse import Warehouse

JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)


def _actors(rows: list[dict[str, Any]]) -> Any:
    return aggregate("distinct", [r["actor_id"] for r in rows])


EXPECTED = {
    # per day d: lookback_days N ends at d + 1, so [d - N + 1, d + 1)
    "active_users_30d": (lambda r: True, _actors),
    "daily_active_users": (lambda r: True, _actors),
    "weekly_active_users": (lambda r: True, _actors),
    "average_revenue_per_customer": (
        lambda r: (
            r["event_type"] == "purchase"
            and r["actor_id"] is not None
            and (r["revenue_cents"] or 0) > 0
        ),
        lambda rows: ratio(
            aggregate("sum", [r["revenue_cents"] for r in rows]),
            aggregate("distinct", [r["actor_id"] for r in rows]),
        ),
    ),
    "license_renewal_rate_by_industry": (
        lambda r: r["entity_type"] == "license",
        lambda rows: ratio(
            len({r["entity_id"] for r in rows if r["event_type"] == "license_renewal"}),
            len({r["entity_id"] for r in rows}),
        ),
    ),
    "asset_utilization_by_category": (
        lambda r: r["entity_type"] == "asset",
        lambda rows: ratio(len(rows), len({r["entity_id"] for r in rows})),
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_examples_match_python(name: str, wh: Warehouse, events: list[dict[str, Any]]) -> None:
    definition = load_examples()[name]
    compiled = compile_metric(
        definition, wh.dialect, JAN, FEB, schema=wh.schema, week_start_index=0
    )
    rows = wh.query(compiled.sql, compiled.params)
    keep, value = EXPECTED[name]
    grain = definition.time_grain.value if definition.time_grain else None
    periods = grain_periods(JAN, FEB, grain)
    expected = series_reference(
        events, list(definition.dimensions), keep, value, periods, definition.lookback_days
    )
    assert_same(as_result(rows), expected)
    assert rows, name
    if definition.dimensions:
        assert len(rows) > 1  # really split by the JSON key


def test_wau_growth_example(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    definition = load_examples()["weekly_active_users_growth"]
    monday, end = date(2024, 12, 30), date(2025, 3, 3)
    compiled = compile_metric(
        definition, wh.dialect, monday, end, schema=wh.schema, week_start_index=0
    )
    rows = [tuple(r) for r in wh.query(compiled.sql, compiled.params)]
    weeks = grain_periods(monday - timedelta(days=7), end, "week")
    wau = series_reference(events, [], lambda r: True, _actors, weeks)
    expected = []
    for (s, e), previous in zip(weeks[1:], weeks, strict=False):
        current, before = wau[(s, e)], wau[previous]
        change = None if not before else percent(current - before, before)
        expected.append((s, e, before, change, current))
    assert rows == expected
    assert any(r[3] is not None for r in rows)


def test_funnel_example(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    definition = load_examples()["view_checkout_purchase_funnel"]
    compiled = compile_metric(definition, wh.dialect, JAN, FEB, schema=wh.schema)
    steps = [
        lambda r, t=t: r["event_type"] == t for t in ("page_view", "asset_checkout", "purchase")
    ]
    expected = funnel_reference(events, steps, 7, utc(JAN), utc(FEB))
    assert [tuple(r) for r in wh.query(compiled.sql, compiled.params)] == expected


def test_retention_example(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    definition = load_examples()["weekly_retention_8_weeks"]
    compiled = compile_metric(
        definition, wh.dialect, JAN, FEB, schema=wh.schema, week_start_index=0
    )
    back = {"page_view", "click", "asset_checkout", "purchase"}
    expected = retention_reference(
        events,
        lambda r: r["event_type"] == "page_view",
        lambda r: r["event_type"] in back,
        "week",
        8,
        JAN,
        FEB,
    )
    assert [tuple(r) for r in wh.query(compiled.sql, compiled.params)] == expected
    assert len(expected) == 4 * 9  # the four weeks starting in January, k = 0..8


def test_format_table_aligns() -> None:
    text = format_table(["name", "value"], [("a", 1), ("long name", 12.5), ("n", None)])
    lines = text.splitlines()
    assert lines[0].startswith("name") and set(lines[1]) <= {"-", " "}
    assert lines[2].endswith("   1") and lines[3].endswith("12.5") and lines[4].endswith("NULL")


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DuckDB warehouse file the CLI's `connect()` opens through the environment."""
    path = tmp_path / "cli.duckdb"
    wh = duckdb_warehouse(path)
    events = make_events(400, seed=5)
    load_sources(wh, events, make_rollups(events))
    wh.close()
    monkeypatch.setenv("METRICS_TARGET", "duckdb")
    monkeypatch.setenv("METRICS_DUCKDB_PATH", str(path))
    monkeypatch.setenv("METRICS_SCHEMA", "metrics")
    return path


def test_cli_end_to_end(cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--examples"]) == 0
    out = capsys.readouterr().out
    assert (
        f"{len(load_examples())} valid, 0 rejected" in out
        and len(load_examples()) == 9
        and "License renewal rate by industry" in out
    )

    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: evil\nmetric_type: COUNT\ndata_source: events\n"
        "calculation_formula: \"pg_read_file('/etc/passwd')\"\n"
    )
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED bad.yml: calculation_formula: unknown function pg_read_file()" in out

    assert (
        main(
            [
                "compile",
                "--examples",
                "--dialect",
                "postgres",
                "--start",
                "2025-01-06",
                "--end",
                "2025-02-03",
            ]
        )
        == 0
    )
    compiled = capsys.readouterr().out
    assert "%(p1)s" in compiled and "CROSS JOIN LATERAL" in compiled  # one query per series

    # whole weeks, so the week-over-week example can compare every week
    assert main(["test", "--examples", "--start", "2025-01-06", "--end", "2025-02-03"]) == 0
    captured = capsys.readouterr()
    assert "nothing saved" in captured.out
    assert captured.err.strip() == "acting as the local operator (admin)"

    assert main(["create", "--examples"]) == 0
    created = capsys.readouterr().out
    ids = [line.split()[0] for line in created.splitlines()[2:]]
    assert len(ids) == 9 and all(i.startswith("cm_") for i in ids)

    assert main(["calculate", ids[0], "--start", "2025-01-01", "--end", "2025-01-08"]) == 0
    out = capsys.readouterr().out
    assert "SUCCESS" in out and "period_start" in out

    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "9 definitions" in listing and "operator" in listing

    assert main(["calculate", "cm_missing", "--start", "2025-01-01", "--end", "2025-01-02"]) == 1
    assert "no definition" in capsys.readouterr().err
