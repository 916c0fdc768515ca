"""Custom metrics on Spark beyond the shared correctness tests: a running query is cancelled at
its time limit (and the session stays usable), the runner refuses a statement that writes, and
`metrics custom create` / `calculate` store and print what plain Python computes."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import CostClass, ExecutionPolicy, MetricTimeoutError
from custom_metrics.cli import main
from custom_metrics.compiler import CompiledMetric
from custom_metrics.execution import QueryFailure, ReadOnlyRunner
from tests.custom_metrics.support import aggregate, assert_same, reference, utc
from warehouse import Warehouse, connect

pytestmark = pytest.mark.spark


def _hand_made(sql: str) -> CompiledMetric:
    return CompiledMetric(sql, {}, "spark", ("value",), definition=None)  # type: ignore[arg-type]


def test_a_running_query_is_cancelled_at_its_time_limit(spark_wh: Warehouse) -> None:
    """Two hundred billion rows would take minutes; the watchdog cancels the query's job tag
    after 1.5 s of running. The runner's clock stands still, so EXPLAIN costs nothing of it
    and the query is known to have started before the limit."""
    policy = ExecutionPolicy(timeout_ms={c: 1_500 for c in CostClass})
    runner = ReadOnlyRunner(spark_wh, policy, clock=lambda: 0.0)
    endless = _hand_made("select sum(hash(id)) as value from range(0, 200000000000)")
    assert runner.estimate(endless).cost_class is CostClass.HIGH  # terabytes of ids
    with pytest.raises(MetricTimeoutError, match=r"cancelled: .* 1500 ms time limit"):
        runner.run([endless])
    context = spark_wh.raw.sparkContext
    assert list(context.statusTracker().getActiveJobsIds()) == []
    assert spark_wh.query("select 1") == [(1,)]
    quick = _hand_made("select count(*) as value from range(0, 1000)")
    assert runner.run([quick])[0].rows == [(1000,)]


@pytest.mark.parametrize(
    "sql",
    [
        "insert into {schema}.t values (1)",
        "create table {schema}.u as select 1 as x",
        "select 1 as value; drop table {schema}.t",
        "cache table c as select 1",
    ],
)
def test_the_runner_refuses_statements_that_write(spark_wh: Warehouse, sql: str) -> None:
    """Spark has no read-only transaction: the runner runs only a single query."""
    spark_wh.execute(f"create table if not exists {spark_wh.schema}.t (x int) using parquet")
    with pytest.raises(QueryFailure, match=r"read-only|not a query"):
        ReadOnlyRunner(spark_wh).run([_hand_made(sql.format(schema=spark_wh.schema))])
    assert spark_wh.query(f"select count(*) from {spark_wh.schema}.t") == [(0,)]
    assert not spark_wh.table_exists(spark_wh.schema, "u")


def test_cli_creates_and_calculates_on_spark(
    spark_wh: Warehouse,
    spark_env: dict[str, str],
    events: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("METRICS_TARGET", "spark")
    monkeypatch.setenv("METRICS_SCHEMA", spark_wh.schema)
    definition = tmp_path / "revenue.yml"
    definition.write_text(
        "name: Revenue by type\nmetric_type: SUM\ndata_source: events\n"
        "calculation_formula: revenue_cents\ndimensions: [event_type]\n"
        "where: actor_id is not null\nvisibility: PUBLIC\n"
    )
    assert main(["compile", str(definition), "--start", "2025-01-01", "--end", "2025-02-01"]) == 0
    assert "CAST(:period_start AS TIMESTAMP)" in capsys.readouterr().out
    assert main(["create", str(definition)]) == 0
    (created,) = capsys.readouterr().out.splitlines()[2:]
    definition_id = created.split()[0]
    start, end = date(2025, 1, 1), date(2025, 2, 1)
    args = ["calculate", definition_id, "--start", start.isoformat(), "--end", end.isoformat()]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows = [line.split() for line in lines[2 : lines.index("")]]
    expected = reference(
        events,
        ["event_type"],
        lambda r: r["actor_id"] is not None and utc(start) <= r["occurred_at"] < utc(end),
        lambda rows: aggregate("sum", [r["revenue_cents"] for r in rows]),
    )
    assert_same({(r[2],): int(r[3]) for r in rows}, expected)
    assert f"SUCCESS: {len(expected)} values for {definition_id} v1" in out
    stored = spark_wh.query(
        f"select count(*), max(use_count) from {spark_wh.schema}.custom_metric_usage "
        f"where definition_id = {spark_wh.param('id')}",
        {"id": definition_id},
    )
    assert stored == [(1, 1)]


def test_the_freshness_check_finds_late_events(spark_dirs: dict[str, str]) -> None:
    """The freshness probe's SQL on Spark (UTC day numbers of the events ingested since the
    builds, the audit log's stamp beside them): fresh while every event arrived before its
    day's build; then the late day is named, by a kept verdict and by a new service alike."""
    from custom_metrics.freshness import RollupFreshness
    from custom_metrics.rollup_answers import Piece
    from metrics_events.source import ensure_source_table
    from tests.custom_metrics.support import insert_rows, record_builds, spark_warehouse
    from tests.custom_metrics.test_rollup_cover import late_row
    from warehouse.calendar import Grain

    suffix = uuid.uuid4().hex[:8]
    session = spark_warehouse(spark_dirs, f"cm_{suffix}")
    wh = connect(replace(session.config, source_schema=f"raw_{suffix}"))
    built_at = datetime(2025, 2, 1, 3, tzinfo=UTC)
    try:
        ensure_source_table(wh)
        arrived = [
            late_row(date(2025, 1, d), datetime(2025, 1, d, 6, tzinfo=UTC), f"{d}")
            for d in (5, 10, 31)
        ]
        insert_rows(wh, "events", arrived, wh.source_schema)
        record_builds(wh, (date(2025, 1, 1), date(2025, 2, 1)), built_at, grains=("daily",))
        pieces = [Piece(Grain.DAY, date(2025, 1, 3), date(2025, 1, 20))]
        kept = RollupFreshness(wh)
        assert kept.staleness(pieces) is None
        late = late_row(date(2025, 1, 12), built_at + timedelta(hours=1), "late")
        insert_rows(wh, "events", [late], wh.source_schema)
        reason = "events of 2025-01-12 arrived after the rollups were built (late data)"
        assert kept.staleness(pieces) == reason
        assert RollupFreshness(wh).staleness(pieces) == reason
    finally:
        for schema in (wh.schema, wh.source_schema):
            wh.execute(f"drop schema if exists {schema} cascade")
