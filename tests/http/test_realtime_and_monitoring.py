"""Realtime writes then reads over real HTTP, and `/metrics` parsed by Prometheus' own text
parser: the realtime series plus job runs, failures and durations from the audit log, cache
counters, reconciliation drift and freshness, each checked against values computed here."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestration.audit_log import AuditEntry, AuditLog, JobStatus
from tests.http.conftest import Api
from tests.http.http_support import daily_rows, insert_rows

DUCKDB_ONLY = pytest.mark.parametrize("warehouse_config", ["duckdb"], indirect=True)


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@DUCKDB_ONLY
def test_batch_write_then_read(api: Api) -> None:
    client = api.client("bob")
    observations = [float(v) for v in range(1, 101)]
    events: list[dict[str, Any]] = [
        {"type": "counter", "name": "orders", "value": 3, "labels": {"region": "eu"}},
        {"type": "counter", "name": "orders", "value": 4, "labels": {"region": "eu"}},
        {"type": "counter", "name": "orders", "labels": {"region": "us"}},
        {"type": "gauge", "name": "queue_depth", "value": 17.5, "unit": "items"},
        {"type": "rate", "name": "logins", "count": 30, "window_seconds": 60},
        *({"type": "histogram", "name": "latency_ms", "value": v} for v in observations),
    ]
    reply = client.post("/v1/realtime/events", {"events": events})
    assert reply.status == 200, reply.body
    assert reply.json()["accepted"] == len(events)
    assert reply.json()["results"][:3] == [3, 7, 1]
    eu = client.get("/v1/realtime/counters/orders?label=region:eu").json()
    assert eu == {"name": "orders", "labels": {"region": "eu"}, "value": 7}
    assert client.get("/v1/realtime/counters/orders?label=region:us").json()["value"] == 1
    assert client.get("/v1/realtime/gauges/queue_depth").json()["value"] == 17.5
    assert client.get("/v1/realtime/gauges/never_set").status == 404
    rate = client.get("/v1/realtime/rates/logins?window_seconds=60").json()
    assert rate["per_second"] == pytest.approx(30 / 60)
    snap = client.get("/v1/realtime/histograms/latency_ms").json()
    assert (snap["count"], snap["sum"], snap["min"], snap["max"]) == (100, 5050.0, 1.0, 100.0)
    for q in (50, 90, 95, 99):
        assert snap[f"p{q}"] == pytest.approx(_nearest_rank(observations, q), rel=0.011)
    # Bad writes: the whole batch is refused with the event named, nothing applied.
    bad = client.post(
        "/v1/realtime/events",
        {
            "events": [
                {"type": "counter", "name": "orders", "labels": {"region": "eu"}},
                {"type": "counter", "name": "bad name!", "value": 1},
            ]
        },
    )
    assert bad.status == 422 and bad.json()["field"] == "events.1", bad.body
    assert client.get("/v1/realtime/counters/orders?label=region:eu").json()["value"] == 7
    unknown = client.post("/v1/realtime/events", {"events": [{"type": "summary", "name": "x"}]})
    assert unknown.status == 422
    assert client.post("/v1/realtime/events", {"events": []}).status == 422
    assert api.client().post("/v1/realtime/events", {"events": events[:1]}).status == 401


def _families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@DUCKDB_ONLY
def test_metrics_page_parses_and_matches_the_sources(api: Api) -> None:
    client = api.client("alice")
    client.post(
        "/v1/realtime/events",
        {
            "events": [
                {"type": "counter", "name": "signups", "value": 5, "labels": {"plan": 'pro "x"'}},
                {"type": "gauge", "name": "workers", "value": 3},
                {"type": "histogram", "name": "render_ms", "value": 12},
            ]
        },
    )
    audit = AuditLog(api.config)
    outcomes = [
        ("daily", JobStatus.COMPLETED),
        ("daily", JobStatus.FAILED),
        ("weekly", JobStatus.FAILED),
    ]
    for index, (grain, status) in enumerate(outcomes):
        log_id = audit.start(
            AuditEntry(
                job_name=f"{grain}_job",
                grain=grain,
                partition_range_start=date(2025, 1, 1),
                partition_range_end=date(2025, 1, 5),
                window_start=date(2025, 1, 1),
                window_end=date(2025, 1, 6),
                dagster_run_id=f"run{index}",
                attempt=1,
            )
        )
        audit.finish(log_id, status, error="boom" if status is JobStatus.FAILED else None)
    with api.warehouse() as wh:
        insert_rows(wh, "weekly_metrics", [])
        insert_rows(wh, "monthly_metrics", [])
        insert_rows(wh, "daily_metrics", daily_rows(date(2025, 1, 1), 2))
        durations = dict(
            ((g, s), float(ms) / 1000)
            for g, s, ms in wh.query(
                f"select grain, status, duration_ms from {wh.schema}.metrics_aggregation_jobs_log"
            )
        )
        wh.execute(
            f"create table {wh.schema}.realtime_reconciliation_log (key_prefix text, name text,"
            " labels text, hour_start timestamptz, redis_value double precision,"
            " warehouse_value bigint, drift double precision, corrected boolean,"
            " reconciled_at timestamptz)"
        )
        earlier, latest = datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC)
        for drift, at in ((-9.0, earlier), (2.0, latest), (-3.0, latest)):
            wh.execute(
                f"insert into {wh.schema}.realtime_reconciliation_log values"
                " ('rt:', 'c', '{}', $at, 1, 1, $drift, true, $at)",
                {"at": at, "drift": drift},
            )
    # One dashboard-cache miss then a hit would need the dashboards endpoint; the counters
    # start at zero here and must be present.
    reply = client.get("/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain; version=0.0.4")
    families = _families(reply.body.decode())
    assert families["signups"][("signups_total", (("plan", 'pro "x"'),))] == 5
    assert families["workers"][("workers", ())] == 3
    assert families["render_ms"][("render_ms_count", (("window", "300"),))] == 1
    runs = families["metrics_rollup_runs"]
    assert runs[("metrics_rollup_runs_total", (("grain", "daily"), ("status", "COMPLETED")))] == 1
    assert runs[("metrics_rollup_runs_total", (("grain", "daily"), ("status", "FAILED")))] == 1
    assert runs[("metrics_rollup_runs_total", (("grain", "weekly"), ("status", "FAILED")))] == 1
    failures = families["metrics_rollup_failures"]
    assert failures[("metrics_rollup_failures_total", (("grain", "daily"),))] == 1
    assert failures[("metrics_rollup_failures_total", (("grain", "monthly"),))] == 0
    seconds = families["metrics_rollup_duration_seconds"]
    daily = (("grain", "daily"),)
    assert seconds[("metrics_rollup_duration_seconds_count", daily)] == 2
    assert seconds[("metrics_rollup_duration_seconds_sum", daily)] == pytest.approx(
        durations[("daily", "COMPLETED")] + durations[("daily", "FAILED")]
    )
    drift = families["metrics_realtime_reconciliation_drift"]
    assert drift[("metrics_realtime_reconciliation_drift", ())] == 5.0
    hours = families["metrics_realtime_reconciliation_hours"]
    assert hours[("metrics_realtime_reconciliation_hours_total", ())] == 3
    # The audit log's latest COMPLETED daily partition is 2025-01-05.
    latest_ts = families["metrics_data_latest_partition_timestamp_seconds"]
    assert (
        latest_ts[("metrics_data_latest_partition_timestamp_seconds", daily)]
        == datetime(2025, 1, 5, tzinfo=UTC).timestamp()
    )
    lag = families["metrics_data_freshness_seconds"][("metrics_data_freshness_seconds", daily)]
    assert lag >= datetime.now(UTC).timestamp() - datetime(2025, 1, 6, tzinfo=UTC).timestamp() - 5
    for name in ("hits", "misses", "errors"):
        assert (f"metrics_cache_{name}_total", ()) in families[f"metrics_cache_{name}"]
    assert api.client().get("/metrics").status == 401
