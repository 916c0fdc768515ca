"""Whether the rollups hold a window yet, judged from what the orchestration records.

An answer read from the rollups is only the events' answer when every period it reads was
built, and built after the last of its events arrived. Two records say so:

- the job audit log (orchestration.audit_log, in the metrics schema): every period read must
  lie inside the window of a COMPLETED build of its grain, with no FAILED build of it since
  (a window not built yet is after the latest complete partition);
- the source events' `ingested_at` (what the late-data sensor watches): no event of the
  period may have arrived after the start of that build (dbt read the source somewhere after
  it started), else the rollup misses it until the late-data re-run.

`RollupFreshness.staleness` returns why the rollups cannot answer
yet, or None when they can. Its two queries write their values (the pieces' dates, the
builds' start times read from the audit log, the statuses) as typed literals, not bound
parameters: they are the warehouse's own dates and times, never a user's text, and DuckDB's
client pays about 0.1 ms per parameter passed (the check took twice as long with them bound).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from custom_metrics.rollup_answers import Piece
from orchestration.audit_log import TABLE as AUDIT_TABLE
from orchestration.audit_log import JobStatus
from warehouse import Warehouse
from warehouse.calendar import Calendar
from warehouse.timestamps import as_utc


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _date(day: date) -> str:
    return f"date '{day.isoformat()}'"


def _instant(wh: Warehouse, value: datetime) -> str:
    kind = "timestamp" if wh.dialect == "spark" else "timestamptz"
    return f"cast('{as_utc(value).isoformat()}' as {kind})"


def _builds(wh: Warehouse, pieces: Sequence[Piece]) -> dict[str, list[tuple[Any, ...]]]:
    """Per grain (`daily` ...), the audit rows of builds whose window meets a piece."""
    lo, hi = min(p.start for p in pieces), max(p.end for p in pieces)
    rows = wh.query(
        f"select grain, window_start, window_end, status, started_at "
        f"from {wh.schema}.{AUDIT_TABLE} "
        f"where window_start < {_date(hi)} and window_end > {_date(lo)} "
        f"and status in ('{JobStatus.COMPLETED}', '{JobStatus.FAILED}')"
    )
    builds: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for grain, start, end, status, started in rows:
        builds[grain].append((start, end, status, as_utc(started)))
    return builds


def _built_at(piece: Piece, builds: list[tuple[Any, ...]]) -> datetime | str:
    """When the oldest of the piece's periods was last built, or why it cannot be read."""
    oldest: datetime | None = None
    # a piece starts on a period start of its grain, so the calendar of its weekday holds it
    for period in Calendar(piece.start.weekday()).periods(piece.grain, piece.start, piece.end):
        covering = [b for b in builds if b[0] <= period < b[1]]
        done = [b[3] for b in covering if b[2] == JobStatus.COMPLETED]
        name = f"{piece.grain.adjective} {period.isoformat()}"
        if not done:
            return f"{piece.table} is not built for {name} yet (no completed build logged)"
        built = max(done)
        if any(b[2] == JobStatus.FAILED and b[3] > built for b in covering):
            return f"the latest build of {piece.table} for {name} failed"
        oldest = built if oldest is None else min(oldest, built)
    assert oldest is not None  # a piece holds at least one period
    return oldest


class RollupFreshness:
    """The freshness check on one warehouse. The audit table and the source table, once seen,
    are not looked up again (a catalog query costs DuckDB milliseconds)."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self._present: set[tuple[str, str]] = set()

    def _exists(self, schema: str, table: str) -> bool:
        if (schema, table) not in self._present and self.wh.table_exists(schema, table):
            self._present.add((schema, table))
        return (schema, table) in self._present

    def staleness(self, pieces: Sequence[Piece]) -> str | None:
        """Why the rollups cannot give the events' answer for these pieces yet, or None."""
        wh = self.wh
        if not pieces:
            return None
        if not self._exists(wh.schema, AUDIT_TABLE):
            return "no rollup build is recorded (the job audit log is missing)"
        if not self._exists(wh.source_schema, "events"):
            return f"late events cannot be checked ({wh.source_schema}.events is missing)"
        builds = _builds(wh, pieces)
        late: list[str] = []
        oldest: datetime | None = None
        for piece in pieces:
            built = _built_at(piece, builds[piece.grain.adjective])
            if isinstance(built, str):
                return built
            oldest = built if oldest is None else min(oldest, built)
            late.append(
                f"(occurred_at >= {_instant(wh, _midnight(piece.start))} "
                f"and occurred_at < {_instant(wh, _midnight(piece.end))} "
                f"and ingested_at > {_instant(wh, built)})"
            )
        assert oldest is not None
        # Events arrive in ingestion order, so `ingested_at` after the oldest build is a short tail
        # of the table (an index range on PostgreSQL, pruned row groups on DuckDB).
        rows = wh.query(
            f"select min(occurred_at) from (select occurred_at from {wh.source_schema}.events "
            f"where ingested_at > {_instant(wh, oldest)} and ({' or '.join(late)}) limit 1) late"
        )
        if rows and rows[0][0] is not None:
            day = as_utc(rows[0][0]).date().isoformat()
            return f"events of {day} arrived after the rollups were built (late data)"
        return None
