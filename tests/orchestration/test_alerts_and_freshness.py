"""The run-failure alert posts a Slack-compatible JSON body to a local HTTP server that records
what it receives; freshness checks exist for every rollup with deadlines after the schedules."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    build_run_status_sensor_context,
    job,
    op,
)

from orchestration.alerts import WEBHOOK_VARIABLE, run_failure_alert_sensor
from orchestration.definitions import build_definitions
from orchestration.freshness import deadline_cron
from orchestration.partitions import Grain
from orchestration.schedules import TICKS


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(
            {
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, list[dict[str, Any]], type[_Recorder]]]:
    """A local HTTP server recording every POST; yields its URL, the records, the handler."""
    handler = type("Recorder", (_Recorder,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts", handler.received, handler
    finally:
        server.shutdown()
        server.server_close()


@op
def _explode() -> None:
    raise RuntimeError("warehouse unreachable: connection refused")


@job(tags={"dagster/partition": "2025-03-04"})
def daily_rollups_like() -> None:
    _explode()


def _failed_run_context(instance: DagsterInstance) -> Any:
    result = daily_rollups_like.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    records = instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.RUN_FAILURE
    ).records
    event = records[0].event_log_entry.dagster_event
    assert event is not None
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()


def test_failed_run_posts_a_slack_compatible_alert(
    webhook: tuple[str, list[dict[str, Any]], type[_Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received, _ = webhook
    monkeypatch.setenv(WEBHOOK_VARIABLE, url)
    sensor = run_failure_alert_sensor()
    with DagsterInstance.ephemeral() as instance:
        context = _failed_run_context(instance)
        sensor(context)
        run_id = context.dagster_run.run_id
    assert len(received) == 1
    posted = received[0]
    assert posted["path"] == "/hooks/alerts"
    assert posted["content_type"] == "application/json"
    body = posted["body"]
    assert isinstance(body["text"], str)  # what a Slack incoming webhook needs
    assert "daily_rollups_like" in body["text"] and "partition 2025-03-04" in body["text"]
    assert run_id in body["text"]
    assert all(block["type"] == "section" for block in body["blocks"])
    assert any("daily_rollups_like" in b["text"]["text"] for b in body["blocks"])


def test_no_webhook_configured_sends_nothing_and_errors_surface(
    webhook: tuple[str, list[dict[str, Any]], type[_Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received, handler = webhook
    monkeypatch.delenv(WEBHOOK_VARIABLE, raising=False)
    sensor = run_failure_alert_sensor()
    with DagsterInstance.ephemeral() as instance:
        context = _failed_run_context(instance)
        sensor(context)
        assert received == []
        monkeypatch.setenv(WEBHOOK_VARIABLE, url)
        handler.status = 500
        with pytest.raises(Exception, match="500"):
            sensor(context)


def test_freshness_checks_cover_every_rollup_after_its_schedule() -> None:
    defs = build_definitions()
    repo = defs.get_repository_def()
    checked = {key.asset_key for key in repo.asset_checks_defs_by_key}
    for grain in Grain:
        rollup = next(k for k in checked if k.path[-1] == f"{grain.adjective}_metrics")
        assert rollup is not None
        schedule_minute, schedule_hour, *schedule_days = TICKS[grain].cron.split()
        minute, hour, *days = deadline_cron(grain).split()
        assert (minute, days) == (schedule_minute, schedule_days)
        assert int(hour) == int(schedule_hour) + 2
    names = {s.name for s in repo.sensor_defs}
    assert {"run_failure_alert", "rollup_freshness_checks_sensor"} <= names
