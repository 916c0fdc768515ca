"""Admin endpoints over real HTTP: admin tokens only (403 for others), the job audit log newest
first with keyset paging and filters, and backfill requests checked before Dagster is asked
(the launch itself is exercised against `dagster dev` in tests/e2e)."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import pytest

from orchestration.audit_log import AuditEntry, AuditLog, JobStatus
from tests.http.conftest import Api
from tests.http.http_support import free_port

DUCKDB_ONLY = pytest.mark.parametrize("warehouse_config", ["duckdb"], indirect=True)


def test_audit_log_is_admin_only_newest_first_and_paged(api: Api) -> None:
    audit = AuditLog(api.config)
    made = []
    for index, (grain, status) in enumerate(
        [
            ("daily", JobStatus.COMPLETED),
            ("weekly", JobStatus.FAILED),
            ("daily", JobStatus.FAILED),
            ("monthly", JobStatus.COMPLETED),
            ("daily", JobStatus.COMPLETED),
        ]
    ):
        log_id = audit.start(
            AuditEntry(
                f"{grain}_job",
                grain,
                date(2025, 1, 1),
                date(2025, 1, 2),
                date(2025, 1, 1),
                date(2025, 1, 3),
                f"run{index}",
                1,
            )
        )
        audit.finish(log_id, status, error="boom" if status is JobStatus.FAILED else None)
        made.append(log_id)
    assert api.client("alice").get("/v1/admin/audit-log").status == 403
    assert api.client().get("/v1/admin/audit-log").status == 401
    admin = api.client("admin")
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = admin.get(f"/v1/admin/audit-log?{urlencode(query)}").json()
        seen.extend(row["log_id"] for row in body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    failed_days = admin.get("/v1/admin/audit-log?grain=daily&status=FAILED").json()["data"]
    assert [r["log_id"] for r in failed_days] == [made[2]]
    assert failed_days[0]["error"] == "boom" and failed_days[0]["dagster_run_id"] == "run2"


@DUCKDB_ONLY
def test_backfill_requests_are_checked_and_need_an_admin(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_DAGSTER_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("METRICS_PARTITIONS_START", "2024-01-01")
    body = {"grain": "daily", "start": "2024-02-01", "end": "2024-02-03"}
    assert api.client("bob").post("/v1/admin/backfills", body).status == 403
    admin = api.client("admin")
    reversed_range = admin.post("/v1/admin/backfills", {**body, "start": "2024-03-01"})
    assert reversed_range.status == 422 and reversed_range.json()["field"] == "start"
    too_early = admin.post(
        "/v1/admin/backfills", {"grain": "daily", "start": "2020-01-01", "end": "2020-01-05"}
    )
    assert too_early.status == 422
    assert admin.post("/v1/admin/backfills", {**body, "grain": "hourly"}).status == 422
    unreachable = admin.post("/v1/admin/backfills", body)
    assert unreachable.status == 502, unreachable.body
    assert "Dagster" in unreachable.json()["detail"]
