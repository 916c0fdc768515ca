"""Failed runs reported to METRICS_ALERT_WEBHOOK_URL as a JSON body a Slack incoming webhook
accepts (`text`, plus `blocks` for clients that render them).

The sensor watches every job of this code location; without the variable it does nothing.
A webhook that answers with an error raises, so the sensor's failure shows in the Dagster UI.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Mapping
from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorDefinition,
    run_failure_sensor,
)

WEBHOOK_VARIABLE = "METRICS_ALERT_WEBHOOK_URL"
TIMEOUT_SECONDS = 10.0
MAX_ERROR_CHARS = 2000
_PARTITION_TAGS = (
    ("partition", "dagster/partition"),
    ("from", "dagster/asset_partition_range_start"),
    ("to", "dagster/asset_partition_range_end"),
)


def alert_payload(
    job_name: str, run_id: str, error: str | None, tags: Mapping[str, str]
) -> dict[str, Any]:
    """The message for one failed run: what failed, which partitions, the error."""
    where = ", ".join(f"{label} {tags[tag]}" for label, tag in _PARTITION_TAGS if tag in tags)
    headline = f"Dagster run failed: {job_name}" + (f" ({where})" if where else "")
    detail = (error or "no error message").strip()[:MAX_ERROR_CHARS]
    text = f"{headline}\nrun {run_id}\n{detail}"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"run `{run_id}`"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{detail}```"}},
        ],
    }


def post_alert(url: str, payload: Mapping[str, Any]) -> int:
    """POST `payload` as JSON; returns the HTTP status, raising on a non-2xx answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        return int(response.status)


def run_failure_alert_sensor() -> SensorDefinition:
    """The sensor that reports every failed run of this code location to the webhook."""

    @run_failure_sensor(
        name="run_failure_alert",
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Posts failed runs to {WEBHOOK_VARIABLE} (a Slack-compatible JSON body).",
    )
    def _alert(context: RunFailureSensorContext) -> None:
        url = os.environ.get(WEBHOOK_VARIABLE, "").strip()
        if not url:
            context.log.info(f"{WEBHOOK_VARIABLE} is not set: no alert sent")
            return
        run = context.dagster_run
        payload = alert_payload(run.job_name, run.run_id, context.failure_event.message, run.tags)
        status = post_alert(url, payload)
        context.log.info(f"alert for run {run.run_id} posted (HTTP {status})")

    return _alert
