"""`/v1/admin` (admin tokens only): launch a rollup backfill through Dagster, read the job
audit log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from serving.http.auth import AdminDep, context_of
from serving.http.dagster_client import launch_backfill, partition_keys
from serving.http.paging import decode_cursor, encode_cursor, fingerprint
from serving.http.problems import Problem
from serving.http.responses import JSONResponse
from serving.http.rollups import plain
from warehouse.audit_table import AUDIT_COLUMNS, AUDIT_TABLE
from warehouse.calendar import Grain

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class BackfillRequest(BaseModel):
    """A grain and a half-open date range; every complete period overlapping it is rebuilt."""

    model_config = ConfigDict(extra="forbid")
    grain: Literal["daily", "weekly", "monthly"]
    start: date
    end: date


@router.post("/backfills", status_code=202, summary="Launch a backfill in Dagster (one run)")
def backfill(caller: AdminDep, wanted: BackfillRequest) -> Response:
    if wanted.start >= wanted.end:
        raise Problem(422, f"start {wanted.start} must be before end {wanted.end}", field="start")
    keys = partition_keys(wanted.grain, wanted.start, wanted.end)
    return JSONResponse(launch_backfill(wanted.grain, keys), status_code=202)


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(AUDIT_COLUMNS, map(plain, values), strict=True))
    for name in ("started_at", "ended_at"):
        if row[name] is not None:
            row[name] = row[name].isoformat()
    return row


@router.get("/audit-log", summary="Job audit log, newest first, keyset-paginated")
def audit_log(
    request: Request,
    caller: AdminDep,
    grain: Annotated[Literal["daily", "weekly", "monthly"] | None, Query()] = None,
    status: Annotated[Literal["RUNNING", "COMPLETED", "FAILED", "PARTIAL"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    bound = fingerprint(["audit", grain, status])
    after = decode_cursor(cursor, bound, 2) if cursor else None
    with context_of(request).pool.connection() as wh:
        if not wh.table_exists(wh.schema, AUDIT_TABLE):
            return JSONResponse({"data": [], "next_cursor": None})
        p = wh.param
        where: list[str] = []
        params: dict[str, Any] = {"limit": limit + 1}
        if grain is not None:  # the log spells grains `daily` (older rows may say `day`)
            where.append(f"grain in ({p('grain')}, {p('noun')})")
            params["grain"], params["noun"] = grain, Grain.parse(grain).value
        if status is not None:
            where.append(f"status = {p('status')}")
            params["status"] = status
        if after is not None:
            where.append(f"(started_at, log_id) < ({p('at')}, {p('id')})")
            params["at"], params["id"] = datetime.fromisoformat(after[0]), after[1]
        rows = wh.query(
            f"select {', '.join(AUDIT_COLUMNS)} from {wh.schema}.{AUDIT_TABLE}"
            + (f" where {' and '.join(where)}" if where else "")
            + f" order by started_at desc, log_id desc limit {p('limit')}",
            params,
        )
    data = [_row(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last[8].isoformat(), str(last[0])], bound)
    return JSONResponse({"data": data, "next_cursor": next_cursor})
