"""A realistic, reproducible stream of product events for the demo, tests and benchmarks.

Weekday seasonality, a growth trend, a long tail of entities and actors (Zipf-like), system
events with NULL actors, revenue only on purchases and renewals (sometimes NULL), re-deliveries
of the same event and late arrivals: the things a rollup must get right.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

# More rows than this is not a demo or a test any more (and would take hours to write).
MAX_TOTAL_EVENTS: Final = 100_000_000

INDUSTRIES = ("software", "retail", "health", "finance", "education", "logistics")
CATEGORIES = ("laptop", "monitor", "phone", "tablet", "printer", "server")
PLANS = ("free", "team", "business", "enterprise")


@dataclass(frozen=True, slots=True)
class Event:
    """One delivered event, as a row of the source table."""

    event_id: str
    occurred_at: datetime
    event_type: str
    actor_id: str | None
    entity_type: str
    entity_id: str
    revenue_cents: int | None
    properties: dict[str, Any] | None
    ingested_at: datetime

    @property
    def event_date(self) -> date:
        """The UTC day the event happened on."""
        return self.occurred_at.astimezone(UTC).date()


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. The defaults give about 2,000 events a day."""

    start: date = date(2025, 1, 1)
    days: int = 120
    events_per_day: int = 2000
    daily_growth: float = 0.004
    weekend_factor: float = 0.55
    entities: dict[str, int] = field(
        default_factory=lambda: {"asset": 400, "license": 150, "org": 60}
    )
    actors: int = 5000
    null_actor_share: float = 0.08
    duplicate_share: float = 0.02
    late_share: float = 0.03
    max_late_days: int = 5
    seed: int = 7

    def __post_init__(self) -> None:
        """Refuse sizes and dates that could not be generated (ValueError names the option)."""
        if not isinstance(self.start, date) or isinstance(self.start, datetime):
            raise ValueError(f"start must be a date, not {self.start!r}")
        for name in ("days", "events_per_day", "max_late_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
        if self.days < 1 or self.events_per_day < 1:
            raise ValueError("days and events_per_day must be at least 1")
        last_ingest = date.max - timedelta(days=self.max_late_days + 2)
        if self.days > (last_ingest - self.start).days:
            raise ValueError(
                f"start {self.start} plus {self.days} days (and up to {self.max_late_days} days "
                "of late arrivals) goes past 9999-12-31: pick an earlier start or fewer days"
            )
        expected = self.expected_events()
        if expected > MAX_TOTAL_EVENTS:
            raise ValueError(
                f"{self.days} days of {self.events_per_day} events a day (growing "
                f"{self.daily_growth:.1%} a day) is about {expected:,.0f} events, more than "
                f"the limit of {MAX_TOTAL_EVENTS:,}: lower the events per day or the days"
            )

    def expected_events(self) -> float:
        """About how many events the stream holds (weekday volume, growth; no noise)."""
        growth = 1.0 + self.daily_growth
        try:
            if abs(self.daily_growth) < 1e-12:
                return float(self.events_per_day) * self.days
            return self.events_per_day * (growth**self.days - 1) / (growth - 1)
        except OverflowError:
            return math.inf


# (event_type, entity_type, weight): which events happen to which entities, and how often.
_EVENT_MIX: tuple[tuple[str, str, float], ...] = (
    ("page_view", "asset", 40.0),
    ("click", "asset", 18.0),
    ("page_view", "org", 10.0),
    ("purchase", "asset", 4.0),
    ("license_renewal", "license", 2.5),
    ("license_view", "license", 8.0),
    ("asset_checkout", "asset", 6.0),
    ("sync", "org", 3.0),
)
_SYSTEM_EVENTS = frozenset({"sync"})


class _Zipf:
    """Draws 0..n-1 with probability proportional to 1 / (rank + 1) ** s: a long tail."""

    def __init__(self, n: int, s: float = 1.1) -> None:
        weights = [1.0 / (rank + 1) ** s for rank in range(n)]
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]

    def draw(self, rng: random.Random) -> int:
        return bisect.bisect_left(self._cumulative, rng.random() * self._total)


def _day_volume(config: GeneratorConfig, offset: int, day: date, rng: random.Random) -> int:
    trend = (1.0 + config.daily_growth) ** offset
    season = config.weekend_factor if day.weekday() >= 5 else 1.0
    noise = rng.gauss(1.0, 0.08)
    return max(0, round(config.events_per_day * trend * season * max(noise, 0.5)))


def _revenue(event_type: str, rng: random.Random) -> int | None:
    if event_type == "purchase":
        return None if rng.random() < 0.05 else int(rng.lognormvariate(8.0, 0.9))
    if event_type == "license_renewal":
        return None if rng.random() < 0.1 else rng.choice((9900, 19900, 49900, 99900))
    return None


def _properties(entity_type: str, entity_index: int, rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.05:
        return None
    if entity_type == "license":
        return {"industry": INDUSTRIES[entity_index % len(INDUSTRIES)], "plan": rng.choice(PLANS)}
    if entity_type == "asset":
        return {"category": CATEGORIES[entity_index % len(CATEGORIES)], "source": "web"}
    return {"industry": INDUSTRIES[entity_index % len(INDUSTRIES)]}


def generate_events(config: GeneratorConfig | None = None) -> Iterator[Event]:
    """Yield every delivery in occurrence order (a re-delivery follows its original)."""
    config = config or GeneratorConfig()
    rng = random.Random(config.seed)
    entity_pickers = {kind: _Zipf(count) for kind, count in config.entities.items()}
    actor_picker = _Zipf(config.actors, 0.9)
    mix = [item for item in _EVENT_MIX if item[1] in config.entities]
    mix_cumulative = list(itertools.accumulate(weight for _, _, weight in mix))
    serial = 0
    for offset in range(config.days):
        day = config.start + timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        volume = _day_volume(config, offset, day, rng)
        seconds = sorted(rng.random() * 86400 for _ in range(volume))
        for second in seconds:
            serial += 1
            pick = bisect.bisect_left(mix_cumulative, rng.random() * mix_cumulative[-1])
            event_type, entity_type, _ = mix[pick]
            entity_index = entity_pickers[entity_type].draw(rng)
            occurred_at = midnight + timedelta(seconds=math.floor(second * 1000) / 1000)
            system = event_type in _SYSTEM_EVENTS or rng.random() < config.null_actor_share
            actor = None if system else f"user_{actor_picker.draw(rng):05d}"
            delay = timedelta(seconds=rng.uniform(1, 120))
            if rng.random() < config.late_share:
                delay = timedelta(days=rng.uniform(1, config.max_late_days))
            event = Event(
                event_id=f"evt_{config.seed}_{serial:09d}",
                occurred_at=occurred_at,
                event_type=event_type,
                actor_id=actor,
                entity_type=entity_type,
                entity_id=f"{entity_type}_{entity_index:04d}",
                revenue_cents=_revenue(event_type, rng),
                properties=_properties(entity_type, entity_index, rng),
                ingested_at=occurred_at + delay,
            )
            yield event
            if rng.random() < config.duplicate_share:
                yield _redelivery(event, rng)


def _redelivery(event: Event, rng: random.Random) -> Event:
    """The same event delivered again later (same id and occurred_at, later ingested_at)."""
    return Event(
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        event_type=event.event_type,
        actor_id=event.actor_id,
        entity_type=event.entity_type,
        entity_id=event.entity_id,
        revenue_cents=event.revenue_cents,
        properties=event.properties,
        ingested_at=event.ingested_at + timedelta(minutes=rng.uniform(1, 600)),
    )
