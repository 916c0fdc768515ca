"""Whether the rollups hold a window yet, judged from what the orchestration records.

An answer read from the rollups is only the events' answer when every period it reads was
built, and built after the last of its events arrived. Two records say so:

- the job audit log (orchestration.audit_log, in the metrics schema): every period read must
  lie inside the window of a COMPLETED build of its grain, with no FAILED build of it since
  (a window not built yet is after the latest complete partition);
- the source events' `ingested_at` (what the late-data sensor watches): no event of the
  period may have arrived after the start of that build (dbt read the source somewhere after
  it started), else the rollup misses it until the late-data re-run.

`RollupFreshness.staleness` returns why the rollups cannot answer yet, or None when they can.
A verdict is kept per set of pieces, with a stamp of the audit rows it was read from (how many
finished builds meet the pieces' span, their latest start and end) and the newest
`ingested_at` already examined. The next check of the same pieces is one query: the stamp
again (any build of the span logged, finished or closed since changes it: the verdict is read
again) and the late-event probe over the events ingested since the last check only (less an
hour, the late-data sensor's overlap for rows that commit out of ingestion order), instead of
every event ingested since the oldest build of the pieces, which is most of the window's
events when the daily builds are spread over it.

Its queries write their values (the pieces' dates, the builds' start times read from the audit
log, the statuses) as typed literals, not bound parameters: they are the warehouse's own dates
and times, never a user's text, and DuckDB's client pays about 0.1 ms per parameter passed.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from custom_metrics.rollup_answers import Piece
from orchestration.audit_log import JobStatus
from orchestration.late_data import LateDataCursor
from warehouse import Warehouse
from warehouse.audit_table import AUDIT_TABLE
from warehouse.calendar import Calendar
from warehouse.timestamps import as_utc


def _date(day: date) -> str:
    return f"date '{day.isoformat()}'"


def _instant(wh: Warehouse, value: datetime) -> str:
    kind = "timestamp" if wh.dialect == "spark" else "timestamptz"
    return f"cast('{as_utc(value).isoformat()}' as {kind})"


# The verdicts kept per RollupFreshness (one per service); the least recently used go first.
KEPT_VERDICTS: Final = 256
_FINISHED: Final = f"('{JobStatus.COMPLETED}', '{JobStatus.FAILED}')"

# (finished builds meeting the span, their latest start, their latest end)
Stamp = tuple[int, datetime | None, datetime | None]


def _latest(values: Sequence[Any]) -> datetime | None:
    present = [as_utc(v) for v in values if v is not None]
    return max(present, default=None)


def _span(wh: Warehouse, pieces: Sequence[Piece]) -> str:
    """The audit rows the verdict depends on: finished builds whose window meets a piece."""
    lo, hi = min(p.start for p in pieces), max(p.end for p in pieces)
    return (
        f"from {wh.schema}.{AUDIT_TABLE} where window_start < {_date(hi)} "
        f"and window_end > {_date(lo)} and status in {_FINISHED}"
    )


def _builds(
    wh: Warehouse, pieces: Sequence[Piece]
) -> tuple[dict[str, list[tuple[Any, ...]]], Stamp]:
    """Per grain (`daily` ...), the audit rows of builds whose window meets a piece; and their
    stamp, as `_probe` reads it."""
    rows = wh.query(
        f"select grain, window_start, window_end, status, started_at, ended_at {_span(wh, pieces)}"
    )
    builds: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for grain, start, end, status, started, _ in rows:
        builds[grain].append((start, end, status, as_utc(started)))
    stamp = (len(rows), _latest([r[4] for r in rows]), _latest([r[5] for r in rows]))
    return builds, stamp


# Days [start, end) built by a build that started at `built`: their events must not have
# arrived after it.
Run = tuple[date, date, datetime]


def _runs(piece: Piece, builds: list[tuple[Any, ...]]) -> list[Run] | str:
    """When each of the piece's periods was last built, or why it cannot be read. Each period
    is judged by its own build: a piece of months built month by month holds events that
    arrived after the first month's build, none late."""
    runs: list[Run] = []
    # a piece starts on a period start of its grain, so the calendar of its weekday holds it
    starts = list(Calendar(piece.start.weekday()).periods(piece.grain, piece.start, piece.end))
    for period, end in zip(starts, [*starts[1:], piece.end], strict=True):
        covering = [b for b in builds if b[0] <= period < b[1]]
        done = [b[3] for b in covering if b[2] == JobStatus.COMPLETED]
        name = f"{piece.grain.adjective} {period.isoformat()}"
        if not done:
            return f"{piece.table} is not built for {name} yet (no completed build logged)"
        built = max(done)
        if any(b[2] == JobStatus.FAILED and b[3] > built for b in covering):
            return f"the latest build of {piece.table} for {name} failed"
        runs.append((period, end, built))
    return runs


@dataclass(frozen=True)
class _Verdict:
    """Fresh pieces: their builds' stamp, when their days were built, and the newest
    `ingested_at` examined (None: no event arrived after the oldest build)."""

    stamp: Stamp
    runs: tuple[Run, ...]
    examined: datetime | None = None

    def since(self) -> datetime:
        """Where the next probe starts: events ingested after this are read again."""
        oldest = min(run[2] for run in self.runs)
        if self.examined is None:
            return oldest
        return max(oldest, self.examined - LateDataCursor.OVERLAP)

    def examined_to(self, newest: datetime | None) -> _Verdict:
        seen = [t for t in (self.examined, newest) if t is not None]
        return _Verdict(self.stamp, self.runs, max(seen, default=None))


@dataclass(frozen=True)
class _Probe:
    stamp: Stamp
    newest: datetime | None  # the newest ingested_at read
    late: date | None  # the first day of a piece with an event that arrived after its build


_EPOCH: Final = date(1970, 1, 1)


def _built_by_day(runs: Sequence[Run]) -> dict[int, datetime]:
    """When each day of the runs (as days since 1970-01-01) was built."""
    return {
        (start - _EPOCH).days + offset: built
        for start, end, built in runs
        for offset in range((end - start).days)
    }


def _probe(wh: Warehouse, pieces: Sequence[Piece], runs: Sequence[Run], since: datetime) -> _Probe:
    """One query: the builds' stamp now, and for each UTC day the newest `ingested_at` of the
    events ingested after `since`. A day of the runs whose newest arrival is after its build
    holds a late event. Per day, not per run, because a condition per run (90 of them for a
    90-day cut built day by day) cost DuckDB about 100 ms over 2M events, one group per day
    about 10 ms."""
    # Events arrive in ingestion order, so `ingested_at` after `since` is a tail of the table
    # (an index range on PostgreSQL, pruned row groups on DuckDB).
    rows = wh.query(
        f"select b.finished, b.last_start, b.last_end, e.day, e.newest "
        f"from (select count(*) as finished, max(started_at) as last_start, "
        f"max(ended_at) as last_end {_span(wh, pieces)}) b left join "
        f"(select {wh.utc_day_number('occurred_at')} as day, max(ingested_at) as newest "
        f"from {wh.source_schema}.events where ingested_at > {_instant(wh, since)} "
        f"group by 1) e on 1 = 1"
    )
    finished, last_start, last_end = rows[0][:3]
    stamp = (int(finished), _latest([last_start]), _latest([last_end]))
    built = _built_by_day(runs)
    arrivals = {int(day): as_utc(newest) for *_, day, newest in rows if day is not None}
    late = [day for day, newest in arrivals.items() if day in built and newest > built[day]]
    first_late = _EPOCH + timedelta(days=min(late)) if late else None
    return _Probe(stamp, _latest([row[4] for row in rows]), first_late)


def _late_reason(probe: _Probe) -> str | None:
    if probe.late is None:
        return None
    return f"events of {probe.late.isoformat()} arrived after the rollups were built (late data)"


class RollupFreshness:
    """The freshness check on one warehouse. The audit table and the source table, once seen,
    are not looked up again (a catalog query costs DuckDB milliseconds); fresh verdicts are
    kept and checked again with one query (see the module's docstring)."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self._present: set[tuple[str, str]] = set()
        self._verdicts: OrderedDict[tuple[Piece, ...], _Verdict] = OrderedDict()

    def _exists(self, schema: str, table: str) -> bool:
        if (schema, table) not in self._present and self.wh.table_exists(schema, table):
            self._present.add((schema, table))
        return (schema, table) in self._present

    def _judged(self, key: tuple[Piece, ...], verdict: _Verdict, probe: _Probe) -> str | None:
        """The probe's verdict; a fresh one is kept (the least recently used dropped)."""
        reason = _late_reason(probe)
        if reason is not None:
            self._verdicts.pop(key, None)
            return reason
        self._verdicts[key] = verdict.examined_to(probe.newest)
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > KEPT_VERDICTS:
            self._verdicts.popitem(last=False)
        return None

    def staleness(self, pieces: Sequence[Piece]) -> str | None:
        """Why the rollups cannot give the events' answer for these pieces yet, or None."""
        wh = self.wh
        if not pieces:
            return None
        if not self._exists(wh.schema, AUDIT_TABLE):
            return "no rollup build is recorded (the job audit log is missing)"
        if not self._exists(wh.source_schema, "events"):
            return f"late events cannot be checked ({wh.source_schema}.events is missing)"
        key = tuple(pieces)
        kept = self._verdicts.get(key)
        if kept is not None:
            probe = _probe(wh, key, kept.runs, kept.since())
            if probe.stamp == kept.stamp:  # no build of the span logged since
                return self._judged(key, kept, probe)
            self._verdicts.pop(key, None)
        builds, stamp = _builds(wh, pieces)
        runs: list[Run] = []
        for piece in pieces:
            found = _runs(piece, builds[piece.grain.adjective])
            if isinstance(found, str):
                return found
            runs.extend(found)
        probe = _probe(wh, pieces, runs, min(run[2] for run in runs))
        if probe.stamp != stamp:  # a build was logged between the two reads: not kept
            return _late_reason(probe)
        return self._judged(key, _Verdict(stamp, tuple(runs)), probe)
