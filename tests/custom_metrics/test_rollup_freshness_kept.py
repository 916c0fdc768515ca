"""A kept freshness verdict is never stale: one service answers the same window again and
again while events arrive late, builds fail, run and are redone; every answer equals the events
answer (and plain Python), and a kept verdict costs one query."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_metrics import CustomMetricService, compile_metric
from custom_metrics.freshness import RollupFreshness
from custom_metrics.rollup_answers import cover
from tests.custom_metrics.support import (
    BUILT_AT,
    RecordingRaw,
    answer_of,
    as_result,
    insert_rows,
    load_sources,
    make_rollups,
    record_builds,
    window_reference,
)
from tests.custom_metrics.test_rollup_cover import (
    ASSET_BY_EVENT,
    FIRST,
    LAST,
    OWNER,
    SOURCES,
    SPAN_EVENTS,
    WINDOW,
    _open,
    late_row,
)
from warehouse import Warehouse
from warehouse.calendar import Calendar, Grain

EVENTS = SPAN_EVENTS[::5]


@pytest.fixture(params=["duckdb", "postgres"])
def kept_wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    """A fifth of the span's events, their rollups and one build of every grain over them."""
    pg = request.getfixturevalue("pg_database") if request.param == "postgres" else None
    wh = _open(request.param, tmp_path, pg)
    load_sources(wh, EVENTS, make_rollups(EVENTS), built=(FIRST, LAST))
    yield wh
    wh.close()


class Answers:
    """One service (so one kept verdict) answering WINDOW, checked against the events."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self.service = CustomMetricService(wh, OWNER)
        self.events = list(EVENTS)

    def arrive(self, day: date, ingested_at: datetime, name: str) -> None:
        """An asset click of `day` reaching the source table (and staging) at `ingested_at`."""
        row = late_row(day, ingested_at, name)
        insert_rows(self.wh, "events", [row], self.wh.source_schema)
        insert_rows(self.wh, "stg_events", [{**row, "event_date": day}])
        self.events.append({**row, "event_date": day})

    def refill(self) -> None:
        """The rollups' rows from every event so far."""
        for table, rows in make_rollups(self.events).items():
            self.wh.execute(f"delete from {self.wh.schema}.{table}")
            insert_rows(self.wh, table, rows)

    def rebuild(self, started_at: datetime, status: str = "COMPLETED") -> None:
        """The rollups rebuilt from every event so far, logged as a build of every grain."""
        if status == "COMPLETED":
            self.refill()
        record_builds(self.wh, (FIRST, LAST), started_at, status=status)

    def check(self) -> str | None:
        """The answer's fallback reason; the answer equals the events' and plain Python's."""
        run = self.service.test_metric_definition(ASSET_BY_EVENT, *WINDOW)
        slow = compile_metric(
            ASSET_BY_EVENT, self.wh.dialect, *WINDOW, schema=self.wh.schema, use_rollups=False
        )
        expected = window_reference(
            self.events, ["event_type"], lambda r: r["entity_type"] == "asset", len, WINDOW
        )
        assert as_result(run.rows) == answer_of(self.wh, slow) == expected
        if run.fallback_reason is None:
            assert run.answered_from == SOURCES["all"]
        else:
            assert run.answered_from == "events"
        return run.fallback_reason


def test_late_events_after_a_kept_verdict_read_the_events(kept_wh: Warehouse) -> None:
    answers = Answers(kept_wh)
    assert answers.check() is None
    assert answers.check() is None  # kept
    # An event outside the window arrives: still fresh; the probe moves past it.
    answers.arrive(date(2024, 3, 10), BUILT_AT + timedelta(days=2), "outside")
    assert answers.check() is None
    # A late event of the window whose row committed after that one, ingested half an hour
    # before it (within the hour the late-data sensor allows rows to commit out of order).
    answers.arrive(date(2024, 2, 29), BUILT_AT + timedelta(days=2, minutes=-30), "in")
    reason = answers.check()
    assert reason is not None and "events of 2024-02-29 arrived after" in reason
    assert answers.check() == reason  # not kept while the rollups miss it
    answers.rebuild(BUILT_AT + timedelta(days=3))  # the late-data re-run
    assert answers.check() is None
    answers.arrive(date(2024, 1, 3), BUILT_AT + timedelta(days=4), "after the re-run")
    reason = answers.check()
    assert reason is not None and "events of 2024-01-03 arrived after" in reason


def test_a_build_logged_after_a_kept_verdict_is_read(kept_wh: Warehouse) -> None:
    answers = Answers(kept_wh)
    assert answers.check() is None
    answers.rebuild(BUILT_AT + timedelta(hours=1), "RUNNING")  # not finished: still fresh
    assert answers.check() is None
    kept_wh.execute(
        f"update {kept_wh.schema}.metrics_aggregation_jobs_log set status = 'FAILED', "
        f"ended_at = {kept_wh.param('ended')} where status = 'RUNNING'",
        {"ended": BUILT_AT + timedelta(hours=2)},
    )
    reason = answers.check()
    assert reason is not None and "failed" in reason
    answers.arrive(date(2024, 2, 1), BUILT_AT + timedelta(hours=3), "during the failure")
    assert answers.check() == reason
    answers.rebuild(BUILT_AT + timedelta(hours=4))
    assert answers.check() is None
    # The audit rows of the window deleted (the log cleaned by hand): nothing is built.
    kept_wh.execute(f"delete from {kept_wh.schema}.metrics_aggregation_jobs_log")
    reason = answers.check()
    assert reason is not None and "not built" in reason


def _statements(wh: Warehouse, check: Any) -> list[str]:
    original = wh.raw
    wh.raw = RecordingRaw(original)
    try:
        check()
        return list(wh.raw.statements)
    finally:
        wh.raw = original


def test_a_kept_verdict_costs_one_query(kept_wh: Warehouse) -> None:
    freshness = RollupFreshness(kept_wh)
    pieces = cover(*WINDOW, 0)
    first = _statements(kept_wh, lambda: freshness.staleness(pieces))
    again = _statements(kept_wh, lambda: freshness.staleness(pieces))
    assert len(again) == 1 and len(first) > 1
    assert freshness.staleness(pieces) is None
    assert freshness.staleness(pieces[1:]) is None  # another set of pieces: its own verdict


def _record_history(wh: Warehouse) -> None:
    """One build per period of every grain, each started six hours after its period ended
    (the events arrive within five hours), as daily, weekly and monthly schedules leave them."""
    wh.execute(f"delete from {wh.schema}.metrics_aggregation_jobs_log")
    calendar = Calendar(0)
    for grain, name in ((Grain.DAY, "daily"), (Grain.WEEK, "weekly"), (Grain.MONTH, "monthly")):
        for start in calendar.periods(grain, FIRST, LAST):
            end = calendar.next_start(grain, start)
            started = datetime.combine(end, datetime.min.time(), tzinfo=UTC) + timedelta(hours=6)
            record_builds(wh, (start, end), started, [name])


def test_periods_built_one_by_one_are_judged_by_their_own_builds(kept_wh: Warehouse) -> None:
    """Each month of a piece built after it ended: the events of February arrived after
    January's build, which is not late data (the check once took the oldest build of a piece
    for all its periods, so such windows were always answered from the events)."""
    _record_history(kept_wh)
    answers = Answers(kept_wh)
    assert answers.check() is None
    assert answers.check() is None
    # An event of 10 January that arrived on the 12th, before January's monthly build read it:
    # not late (a new service, whose first check reads every event since the oldest build).
    answers.arrive(date(2024, 1, 10), datetime(2024, 1, 12, tzinfo=UTC), "before the month")
    answers.refill()
    answers.service = CustomMetricService(kept_wh, OWNER)
    assert answers.check() is None
    # An event of 1 March (a day read from daily_metrics) arriving now: after that day's build.
    answers.arrive(date(2024, 3, 1), datetime(2024, 3, 21, tzinfo=UTC), "after the day")
    reason = answers.check()
    assert reason is not None and "events of 2024-03-01 arrived after" in reason
