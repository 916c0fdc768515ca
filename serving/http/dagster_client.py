"""Launching rollup backfills through the Dagster webserver's GraphQL API, so they show in the
Dagster UI like any backfill started there (one run per grain: the single-run policy).

The webserver is found at METRICS_DAGSTER_URL (default http://127.0.0.1:3000, `make ui`).
The grain's asset keys come from the code location's own definitions, loaded once.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from datetime import date
from typing import Any

from serving.http.problems import Problem

DAGSTER_URL_VARIABLE = "METRICS_DAGSTER_URL"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
TIMEOUT_SECONDS = 30.0

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}"""

_asset_keys: dict[str, list[list[str]]] = {}
_asset_keys_lock = threading.Lock()


def dagster_url() -> str:
    return (os.environ.get(DAGSTER_URL_VARIABLE, "").strip() or DEFAULT_DAGSTER_URL).rstrip("/")


def grain_asset_keys(grain: str) -> list[list[str]]:
    """The asset keys a grain's rollup job materializes (from the definitions, memoized)."""
    with _asset_keys_lock:
        if not _asset_keys:
            from orchestration.definitions import build_rollups
            from orchestration.settings import OrchestrationSettings

            rollups = build_rollups(OrchestrationSettings.from_env())
            for g, definition in rollups.assets.items():
                _asset_keys[g.adjective] = sorted(list(key.path) for key in definition.keys)
        return _asset_keys[grain]


def partition_keys(grain: str, start: date, end: date) -> list[str]:
    """The grain's complete partitions overlapping [start, end); 422 when there are none."""
    from orchestration.partitions import Grain, available_keys, keys_overlapping
    from orchestration.settings import OrchestrationSettings

    settings = OrchestrationSettings.from_env()
    g = Grain.parse(grain)
    existing = set(available_keys(g, settings))
    keys = [k for k in keys_overlapping(g, start, end, settings) if k in existing]
    if not keys:
        raise Problem(
            422,
            f"no complete {g.value} overlaps [{start}, {end}) (periods must have ended and start"
            f" on or after {settings.partitions_start})",
            field="start",
        )
    return keys


def launch_backfill(grain: str, keys: list[str]) -> dict[str, Any]:
    """Ask Dagster for one backfill of the grain's assets over `keys`; its id and details."""
    params = {
        "partitionsByAssets": [
            {
                "assetKey": {"path": path},
                "partitions": {"range": {"start": keys[0], "end": keys[-1]}},
            }
            for path in grain_asset_keys(grain)
        ],
        "tags": [{"key": "metrics/trigger", "value": "http-api"}],
    }
    url = f"{dagster_url()}/graphql"
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": LAUNCH, "variables": {"params": params}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            payload = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise Problem(
            502, f"the Dagster webserver at {url} did not answer ({error}); is `make ui` running?"
        ) from None
    if payload.get("errors"):
        raise Problem(502, f"Dagster refused the backfill: {payload['errors'][0].get('message')}")
    result = payload["data"]["launchPartitionBackfill"]
    if result.get("__typename") != "LaunchBackfillSuccess":
        raise Problem(502, f"Dagster refused the backfill: {result.get('message') or result}")
    return {
        "backfill_id": result["backfillId"],
        "grain": grain,
        "partitions": keys,
        "assets": ["/".join(p) for p in grain_asset_keys(grain)],
        "dagster_url": f"{dagster_url()}/overview/backfills/{result['backfillId']}",
    }
