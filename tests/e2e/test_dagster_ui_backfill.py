"""End to end, as an operator runs it: `dagster dev` on PostgreSQL storage (the repository's
dagster.yaml), a month's backfill launched through the GraphQL API, the rollup tables and the
job audit log checked, and a headless Chromium screenshot of the asset's partitions page."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from metrics_events import ensure_source_table, load_events
from tests.batch import reference
from tests.batch.edge_events import generated_events
from tests.batch.harness import assert_same_rows, rows_by_grain
from tests.browser import chromium_path
from warehouse import WarehouseConfig, connect

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
MONTH_START, MONTH_END = date(2024, 2, 1), date(2024, 3, 1)
DAILY_ASSETS = (["raw", "events"], ["metrics", "stg_events"], ["metrics", "daily_metrics"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _graphql(port: int, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload: dict[str, Any] = json.loads(response.read())
    assert "errors" not in payload, payload
    return payload["data"]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed by the test set-up when it is missing."""
    return chromium_path()


@pytest.fixture()
def own_database(pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of this test's own: Dagster's storage tables must not meet other tests'."""
    import psycopg2

    name = f"metrics_e2e_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(
        host=pg_env["PGHOST"],
        port=pg_env["PGPORT"],
        user=pg_env["PGUSER"],
        dbname=pg_env["PGDATABASE"],
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    monkeypatch.setenv("PGDATABASE", name)
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture()
def dagster_dev(
    own_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[int]:
    """`dagster dev` on a free port with the production instance config (PostgreSQL storage)."""
    suffix = uuid.uuid4().hex[:8]
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The production config, without the first-visit modal that would cover the screenshot.
    config = (ROOT / "dagster.yaml").read_text() + "\nnux:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(config)
    env_vars = {
        "METRICS_TARGET": "postgres",
        "METRICS_SCHEMA": f"metrics_{suffix}",
        "METRICS_SOURCE_SCHEMA": f"raw_{suffix}",
        "METRICS_PARTITIONS_START": "2024-01-01",
        "METRICS_RETRY_DELAY_SECONDS": "1",
        "DAGSTER_HOME": str(home),
        # The cache-invalidation sensor and realtime jobs write Redis: under this test's names.
        "METRICS_CACHE_NAMESPACE": f"test:e2e:{suffix}",
        "METRICS_REALTIME_PREFIX": f"test:e2e:{suffix}:rt:",
    }
    for key, value in env_vars.items():
        monkeypatch.setenv(key, value)
    with connect(WarehouseConfig()) as wh:
        ensure_source_table(wh)
        load_events(wh, [e for e in generated_events() if MONTH_START <= e.event_date < MONTH_END])
    port = _free_port()
    log = (tmp_path / "dagster_dev.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(os.sys.executable).parent / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "dagster_dev.log").read_text()[-3000:]
            try:
                data = _graphql(port, "{ version }")
                if data.get("version"):
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            tail = (tmp_path / "dagster_dev.log").read_text()[-3000:]
            pytest.fail("dagster dev did not come up: " + tail)
        yield port
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()
        with connect(WarehouseConfig()) as wh:
            for schema in (env_vars["METRICS_SCHEMA"], env_vars["METRICS_SOURCE_SCHEMA"]):
                wh.execute(f"drop schema if exists {schema} cascade")
        _delete_redis_keys(f"*test:e2e:{suffix}*")


def _delete_redis_keys(pattern: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions }
    ... on PythonError { message }
  }
}"""


def _wait_for_code_location(port: int) -> None:
    query = """{ workspaceOrError { ... on Workspace { locationEntries {
        name locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        entries = _graphql(port, query)["workspaceOrError"]["locationEntries"]
        loaded = [
            e
            for e in entries
            if (e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
        ]
        errors = [
            e
            for e in entries
            if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"
        ]
        assert not errors, errors
        if loaded:
            return
        time.sleep(1)
    pytest.fail("the code location did not load")


def _wait_for_backfill(port: int, backfill_id: str) -> str:
    deadline = time.monotonic() + 600
    status = "REQUESTED"
    while time.monotonic() < deadline:
        result = _graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        status = result["status"]
        if status not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        time.sleep(3)
    return str(status)


def _weekly_backfill_through_the_http_api(port: int) -> None:
    """An admin token asks `metrics serve` for a week's backfill: Dagster runs it as a backfill
    of its own (visible in the UI) and the audit log records the week."""
    from serving.http import ServerSettings
    from serving.http.tokens import TokenStore
    from tests.http.http_support import Client, running_server

    config = WarehouseConfig()
    with connect(config) as wh:
        _, token = TokenStore(wh).create("ops-admin", is_admin=True)
    os.environ["METRICS_DAGSTER_URL"] = f"http://127.0.0.1:{port}"
    try:
        settings = ServerSettings(warehouse=config, token_memo_seconds=0)
        with running_server(settings) as base:
            reply = Client(base, token).post(
                "/v1/admin/backfills",
                {"grain": "weekly", "start": "2024-02-05", "end": "2024-02-12"},
            )
    finally:
        os.environ.pop("METRICS_DAGSTER_URL", None)
    assert reply.status == 202, reply.body
    launched = reply.json()
    assert launched["partitions"] == ["2024-02-05"]
    assert ["metrics", "weekly_metrics"] in [a.split("/") for a in launched["assets"]]
    assert _wait_for_backfill(port, launched["backfill_id"]) in ("COMPLETED", "COMPLETED_SUCCESS")
    with connect(config) as wh:
        weeks = wh.query(
            f"select count(*) from {config.schema}.metrics_aggregation_jobs_log"
            " where grain = 'weekly' and status = 'COMPLETED'"
            " and partition_range_start = date '2024-02-05'"
        )
    assert weeks[0][0] >= 1


def test_month_backfill_through_the_graphql_api(
    dagster_dev: int, chromium: str, tmp_path: Path
) -> None:
    port = dagster_dev
    _wait_for_code_location(port)
    last_day = (MONTH_END - timedelta(days=1)).isoformat()
    params = {
        "partitionsByAssets": [
            *(
                {
                    "assetKey": {"path": key},
                    "partitions": {"range": {"start": MONTH_START.isoformat(), "end": last_day}},
                }
                for key in DAILY_ASSETS[1:]
            ),
            *(
                {
                    "assetKey": {"path": ["metrics", name]},
                    "partitions": {
                        "range": {"start": MONTH_START.isoformat(), "end": MONTH_START.isoformat()}
                    },
                }
                for name in ("monthly_totals", "monthly_metrics", "monthly_weekly_breakdown")
            ),
        ],
        "title": "February 2024",
    }
    launched = _graphql(port, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    deadline = time.monotonic() + 600
    status = "REQUESTED"
    while time.monotonic() < deadline:
        result = _graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        status = result["status"]
        if status not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        time.sleep(3)
    assert status in ("COMPLETED", "COMPLETED_SUCCESS"), status

    # The tables equal the reference for the month, and the audit log recorded the runs.
    events = [e for e in generated_events() if MONTH_START <= e.event_date < MONTH_END]
    expected = reference.all_tables(events)
    config = WarehouseConfig()
    with connect(config) as wh:
        for table in ("daily_metrics", "monthly_metrics", "monthly_weekly_breakdown"):
            actual = rows_by_grain(wh, config.schema, table)
            assert_same_rows(table, actual, expected[table])
        audit = wh.query(
            f"select status, count(*) from {config.schema}.metrics_aggregation_jobs_log "
            "group by status"
        )
    assert dict(audit).get("COMPLETED", 0) >= 2, audit

    _weekly_backfill_through_the_http_api(port)

    # The partitions page, as a person sees it.
    url = f"http://127.0.0.1:{port}/assets/metrics/daily_metrics?view=partitions"
    shot = tmp_path / "partitions.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--hide-scrollbars",
        "--window-size=1600,1000",
        "--virtual-time-budget=20000",
    ]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    ).stdout
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", url],
        capture_output=True,
        timeout=180,
        check=False,
    )
    artifacts = Path(os.environ.get("METRICS_TEST_ARTIFACTS", ROOT / ".data" / "e2e"))
    artifacts.mkdir(parents=True, exist_ok=True)
    assert shot.exists(), "chromium wrote no screenshot"
    shutil.copy(shot, artifacts / "daily_metrics_partitions.png")
    (artifacts / "daily_metrics_partitions.html").write_text(dom)
    text = re.sub(r"<[^>]+>", " ", dom)
    assert "daily_metrics" in text
    assert re.search(r"Materialized\s*\(\s*29\s*\)", text), "the page does not show 29 materialized"
    # The health bar spans every partition since 2024; February's 29 days are a green block.
    assert _green_pixels(shot) > 300, "no materialized (green) partitions in the screenshot"


def _green_pixels(png: Path) -> int:
    """Pixels in Dagster's 'materialized' green."""
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        pixels = [rgb.getpixel((x, y)) for x in range(width) for y in range(height // 3)]
    return sum(1 for r, g, b in pixels if g > 100 and g > r + 40 and g > b + 15)
