"""Late data: source events that arrived after the day they belong to was last built.

A day is late when the newest `ingested_at` of its events is later than the start of the run
that last built it (the run start, not its end: dbt read the source somewhere in between).

An event that arrives while the first build of its day runs cannot be judged until that build
is recorded; by then the scan's high-water mark may have moved on by more than its overlap. So
the cursor also keeps the start times of the daily runs in progress at each tick ("holds"), and
the next tick scans from the earliest of them as well: events that arrived during a run are
looked at again once it has finished.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from warehouse import Warehouse
from warehouse.timestamps import as_utc


@dataclass(frozen=True)
class DayIngestion:
    """The newest ingestion among a UTC day's events, and how many rows arrived since `since`."""

    day: date
    max_ingested_at: datetime
    rows: int


EVENTS = "events"  # the source table `ingestion_by_day` reads, in the source schema


def _instant(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def ingestion_by_day(wh: Warehouse, since: datetime | None) -> list[DayIngestion]:
    """Per UTC day of `occurred_at`, the newest `ingested_at` of events ingested after `since`."""
    where, params = "", {}
    if since is not None:
        where = f"where ingested_at > {wh.param('since')}"
        params = {"since": since}
    rows = wh.query(
        f"select {wh.utc_date('occurred_at')} as day, max(ingested_at), count(*) "
        f"from {wh.source_schema}.{EVENTS} {where} group by 1 order by 1",
        params,
    )
    return [DayIngestion(row[0], as_utc(row[1]), int(row[2])) for row in rows]


def late_days(ingestions: list[DayIngestion], built_at: dict[str, datetime]) -> list[DayIngestion]:
    """The days built before their newest event arrived (days never built are not late)."""
    late = []
    for ingestion in ingestions:
        built = built_at.get(ingestion.day.isoformat())
        if built is not None and ingestion.max_ingested_at > built:
            late.append(ingestion)
    return late


@dataclass(frozen=True)
class LateDataCursor:
    """The newest `ingested_at` already examined (each tick rescans a safety overlap before it),
    and the start times of the daily runs that were in progress at the last tick."""

    high_water: datetime | None = None
    holds: tuple[datetime, ...] = ()

    OVERLAP = timedelta(hours=1)

    @classmethod
    def parse(cls, text: str | None) -> "LateDataCursor":
        if not text:
            return cls()
        if not text.startswith("{"):  # written before holds existed: the high-water mark alone
            return cls(_instant(text))
        data = json.loads(text)
        high_water = data.get("high_water")
        return cls(
            _instant(high_water) if high_water else None,
            tuple(_instant(hold) for hold in data.get("holds", [])),
        )

    def serialize(self) -> str | None:
        if self.high_water is None and not self.holds:
            return None
        return json.dumps(
            {
                "high_water": self.high_water.isoformat() if self.high_water else None,
                "holds": [hold.isoformat() for hold in self.holds],
            }
        )

    def scan_from(self, running_since: Iterable[datetime] = ()) -> datetime | None:
        """Where this tick's scan starts: an hour before the high-water mark (rows can commit
        out of ingestion order) or before the start of a daily run in progress now or at the
        last tick, whichever is earlier. None: scan everything."""
        if self.high_water is None:
            return None
        return min((self.high_water, *self.holds, *running_since)) - self.OVERLAP

    def advanced(
        self, ingestions: list[DayIngestion], running_since: Iterable[datetime] = ()
    ) -> "LateDataCursor":
        """The cursor after a tick that saw `ingestions` while runs started at `running_since`
        were in progress (kept for the next tick, which judges what arrived during them)."""
        seen = [i.max_ingested_at for i in ingestions]
        high_water = max([*seen, self.high_water] if self.high_water else seen, default=None)
        return LateDataCursor(high_water, tuple(sorted(set(running_since))))
