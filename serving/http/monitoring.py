"""`GET /metrics`: Prometheus text with the realtime series and the system's own health series.

Operational families (names start with ``metrics_``):
  metrics_rollup_runs_total{grain,status}          counter  attempts in the job audit log
  metrics_rollup_failures_total{grain}             counter  FAILED attempts
  metrics_rollup_duration_seconds{grain}           summary  _sum/_count of finished attempts
  metrics_cache_{hits,misses,errors}_total         counter  this server's dashboard cache
  metrics_cache_hit_ratio                          gauge
  metrics_realtime_reconciliation_drift            gauge    |drift| summed over the last run
  metrics_realtime_reconciliation_hours_total      counter  hours compared so far
  metrics_data_latest_partition_timestamp_seconds{grain}  gauge  start of the latest partition
  metrics_data_freshness_seconds{grain}            gauge    now minus the end of that partition
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, date, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from realtime.prometheus import escape_label_value, format_value
from serving.http.auth import CallerDep, context_of
from serving.http.rollups import freshness
from warehouse import Warehouse
from warehouse.audit_table import AUDIT_TABLE
from warehouse.calendar import Calendar, Grain

router = APIRouter(tags=["monitoring"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECONCILIATION_TABLE = "realtime_reconciliation_log"


class Exposition:
    """Families of samples written in the text format."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[str, dict[str, str], float | int | None]],
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for sample, labels, value in samples:
            inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
            self.lines.append(
                f"{sample}{{{inner}}} {format_value(value)}"
                if inner
                else f"{sample} {format_value(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""


def _rollup_families(page: Exposition, wh: Warehouse) -> None:
    runs: list[tuple[str, dict[str, str], float | int | None]] = []
    failures: list[tuple[str, dict[str, str], float | int | None]] = []
    durations: list[tuple[str, dict[str, str], float | int | None]] = []
    if wh.table_exists(wh.schema, AUDIT_TABLE):
        rows = wh.query(
            f"select grain, status, count(*), sum(duration_ms), count(duration_ms)"
            f" from {wh.schema}.{AUDIT_TABLE} group by grain, status order by grain, status"
        )
        per_grain: dict[str, list[float]] = {}
        failed: dict[str, int] = {}
        for grain, status, count, total_ms, timed in rows:
            adjective = Grain.parse(str(grain)).adjective
            runs.append(
                (
                    "metrics_rollup_runs_total",
                    {"grain": adjective, "status": str(status)},
                    int(count),
                )
            )
            if status == "FAILED":
                failed[adjective] = failed.get(adjective, 0) + int(count)
            sums = per_grain.setdefault(adjective, [0.0, 0])
            sums[0] += float(total_ms or 0) / 1000
            sums[1] += int(timed)
        for g in Grain:
            failures.append(
                (
                    "metrics_rollup_failures_total",
                    {"grain": g.adjective},
                    failed.get(g.adjective, 0),
                )
            )
        for adjective, (seconds, count) in per_grain.items():
            durations.append(("metrics_rollup_duration_seconds_sum", {"grain": adjective}, seconds))
            durations.append(("metrics_rollup_duration_seconds_count", {"grain": adjective}, count))
    page.family("metrics_rollup_runs_total", "counter", "Rollup attempts by status.", runs)
    page.family("metrics_rollup_failures_total", "counter", "Failed rollup attempts.", failures)
    page.family(
        "metrics_rollup_duration_seconds", "summary", "Time of finished attempts.", durations
    )


def _reconciliation_families(page: Exposition, wh: Warehouse) -> None:
    drift: float | None = None
    hours = 0
    if wh.table_exists(wh.schema, RECONCILIATION_TABLE):
        table = f"{wh.schema}.{RECONCILIATION_TABLE}"
        (count,) = wh.query(f"select count(*) from {table}")[0]
        hours = int(count)
        latest = wh.query(
            f"select sum(abs(drift)) from {table}"
            f" where reconciled_at = (select max(reconciled_at) from {table})"
        )[0][0]
        drift = None if latest is None else float(latest)
    page.family(
        "metrics_realtime_reconciliation_drift",
        "gauge",
        "Absolute drift of realtime counters found by the latest reconciliation.",
        [("metrics_realtime_reconciliation_drift", {}, drift if drift is not None else 0.0)],
    )
    page.family(
        "metrics_realtime_reconciliation_hours_total",
        "counter",
        "Counter hours compared with the warehouse.",
        [("metrics_realtime_reconciliation_hours_total", {}, hours)],
    )


def _freshness_families(page: Exposition, wh: Warehouse) -> None:
    latest: list[tuple[str, dict[str, str], float | int | None]] = []
    lag: list[tuple[str, dict[str, str], float | int | None]] = []
    now = time.time()
    calendar = Calendar.named(wh.config.week_start)
    for grain in Grain:
        fresh = freshness(wh, grain, f"{grain.adjective}_metrics")
        if fresh["latest_partition"] is None:
            continue
        start = date.fromisoformat(fresh["latest_partition"])
        end = calendar.period_end(grain, start)
        labels = {"grain": grain.adjective}
        latest.append(("metrics_data_latest_partition_timestamp_seconds", labels, _epoch(start)))
        lag.append(("metrics_data_freshness_seconds", labels, max(0.0, now - _epoch(end))))
    page.family(
        "metrics_data_latest_partition_timestamp_seconds",
        "gauge",
        "Start of the latest complete partition per grain.",
        latest,
    )
    page.family(
        "metrics_data_freshness_seconds",
        "gauge",
        "Seconds since the end of the latest complete partition per grain.",
        lag,
    )


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _cache_families(page: Exposition, stats: dict[str, object]) -> None:
    for name in ("hits", "misses", "errors"):
        value = stats.get(name, 0)
        page.family(
            f"metrics_cache_{name}_total",
            "counter",
            f"Dashboard cache {name} in this server process.",
            [(f"metrics_cache_{name}_total", {}, int(value) if isinstance(value, int) else 0)],
        )
    ratio = stats.get("hit_ratio")
    page.family(
        "metrics_cache_hit_ratio",
        "gauge",
        "Hits / (hits + misses) in this server process.",
        [
            (
                "metrics_cache_hit_ratio",
                {},
                float(ratio) if isinstance(ratio, (int, float)) else None,
            )
        ],
    )


@router.get("/metrics", summary="Prometheus text: realtime series and operational series")
def metrics_page(request: Request, caller: CallerDep) -> Response:
    context = context_of(request)
    page = Exposition()
    with context.pool.connection() as wh:
        _rollup_families(page, wh)
        _reconciliation_families(page, wh)
        _freshness_families(page, wh)
    _cache_families(page, context.cache.get_stats())
    text = context.realtime.export_prometheus() + page.text()
    return Response(text, media_type=CONTENT_TYPE)
