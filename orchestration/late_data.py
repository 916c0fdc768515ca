"""Late data: source events that arrived after the day they belong to was last built.

A day is late when the newest `ingested_at` of its events is later than the start of the run
that last built it (the run start, not its end: dbt read the source somewhere in between).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from warehouse import Warehouse


@dataclass(frozen=True)
class DayIngestion:
    """The newest ingestion among a UTC day's events, and how many rows arrived since `since`."""

    day: date
    max_ingested_at: datetime
    rows: int


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ingestion_by_day(wh: Warehouse, since: datetime | None) -> list[DayIngestion]:
    """Per UTC day of `occurred_at`, the newest `ingested_at` of events ingested after `since`."""
    where, params = "", {}
    if since is not None:
        where = f"where ingested_at > {wh.param('since')}"
        params = {"since": since}
    rows = wh.query(
        f"select cast(occurred_at at time zone 'UTC' as date) as day, max(ingested_at), count(*) "
        f"from {wh.source_schema}.events {where} group by 1 order by 1",
        params,
    )
    return [DayIngestion(row[0], _aware(row[1]), int(row[2])) for row in rows]


def late_days(
    ingestions: list[DayIngestion], built_at: dict[str, datetime]
) -> list[DayIngestion]:
    """The days built before their newest event arrived (days never built are not late)."""
    late = []
    for ingestion in ingestions:
        built = built_at.get(ingestion.day.isoformat())
        if built is not None and ingestion.max_ingested_at > built:
            late.append(ingestion)
    return late


@dataclass(frozen=True)
class LateDataCursor:
    """The newest `ingested_at` already examined; each tick rescans a safety overlap before it."""

    high_water: datetime | None = None

    OVERLAP = timedelta(hours=1)

    @classmethod
    def parse(cls, text: str | None) -> "LateDataCursor":
        if not text:
            return cls()
        return cls(_aware(datetime.fromisoformat(text)))

    def serialize(self) -> str | None:
        return self.high_water.isoformat() if self.high_water else None

    def scan_from(self) -> datetime | None:
        """Rescan an hour before the high-water mark: rows can commit out of ingestion order."""
        return self.high_water - self.OVERLAP if self.high_water else None

    def advanced(self, ingestions: list[DayIngestion]) -> "LateDataCursor":
        newest = max((i.max_ingested_at for i in ingestions), default=None)
        if newest is None or (self.high_water and newest <= self.high_water):
            return self
        return LateDataCursor(newest)
