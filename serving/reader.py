"""`MetricsReader`: the dashboard read API over the warehouse rollups, cached by `MetricsCache`.

Reads ``daily_metrics``, ``weekly_metrics`` and ``monthly_metrics`` (docs/reference.md) with
parameterized SQL on whichever warehouse the environment configures. Ranges are half-open
``[start, end)`` on the period start. Dashboards show complete periods only: ``today`` (UTC, or
the ``today`` given for reproducible output) is the first day not shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from serving.cache import MetricsCache
from serving.invalidation import add_months, month_start, period_tags
from serving.keys import (
    GRAINS,
    daily_key,
    dashboard_key,
    entity_tag,
    grain_tag,
    monthly_key,
    user_tag,
    weekly_key,
)
from serving.rows import LatestPeriod, MetricsRow, row_columns
from serving.serialization import dumps
from warehouse import WarehouseConfig, connect
from warehouse.calendar import Grain, growth_pct
from warehouse.connection import Warehouse
from warehouse.marts import rollup_for

__all__ = ["DATE_RANGES", "MetricsReader"]

MEASURES: Final = ("event_count", "unique_actors", "revenue_cents")
PREV: Final = ("prev_event_count", "prev_unique_actors", "prev_revenue_cents")
GROWTH: Final = ("event_count_growth_pct", "unique_actors_growth_pct", "revenue_growth_pct")


@dataclass(frozen=True)
class _RangeSpec:
    grain: str
    periods: int


DATE_RANGES: Final[Mapping[str, _RangeSpec]] = {
    "7d": _RangeSpec("daily", 7),
    "30d": _RangeSpec("daily", 30),
    "90d": _RangeSpec("daily", 90),
    "12m": _RangeSpec("monthly", 12),
}
"""Dashboard ranges: the last N complete days, or the last 12 complete calendar months."""


def _plain(value: Any) -> Any:
    """A value as plain JSON (dates as ISO strings, Decimals as floats)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class MetricsReader:
    """Series, latest periods and dashboard bundles for an entity (or a ``*`` level)."""

    def __init__(
        self,
        cache: MetricsCache | None = None,
        *,
        config: WarehouseConfig | None = None,
        warehouse: Warehouse | None = None,
        today: date | None = None,
        dashboard_ttl: int | str = "default",
        period_ttl: int | str = "default",
    ) -> None:
        """``cache`` None reads straight through. ``warehouse``: an open connection to reuse
        (otherwise each call opens one, read-only on DuckDB so dbt can still write between
        calls). ``today``: fixes the clock for reproducible ranges."""
        self.cache = cache
        self.config = warehouse.config if warehouse is not None else config or WarehouseConfig()
        self._warehouse = warehouse
        self._today = today
        self.dashboard_ttl = dashboard_ttl
        self.period_ttl = period_ttl
        self._dashboard_plans: dict[tuple[Any, ...], tuple[str, tuple[str, ...], str, date, date]]
        self._dashboard_plans = {}

    # ------------------------------------------------------------------ plumbing

    def today(self) -> date:
        """The first day not shown on dashboards: the fixed ``today`` or the UTC date."""
        return self._today or datetime.now(UTC).date()

    @contextmanager
    def _connection(self) -> Iterator[Warehouse]:
        if self._warehouse is not None:
            yield self._warehouse
            return
        wh = connect(self.config, read_only=self.config.target == "duckdb")
        try:
            yield wh
        finally:
            wh.close()

    def week_start_of(self, day: date) -> date:
        """Start of ``day``'s week under METRICS_WEEK_START (as the rollups and partitions)."""
        return day - timedelta(days=(day.weekday() - self.config.week_start_index) % 7)

    @staticmethod
    def _check_level(entity_type: str, entity_id: str, event_type: str) -> None:
        for name, value in (
            ("entity_type", entity_type),
            ("entity_id", entity_id),
            ("event_type", event_type),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string ('*' for all)")
        if entity_type == "*" and entity_id != "*":
            raise ValueError("entity_id must be '*' when entity_type is '*'")

    def _select(
        self,
        wh: Warehouse,
        grain: str,
        entity_type: str,
        entity_id: str,
        event_type: str | None,
        start: date,
        end: date,
    ) -> list[dict[str, Any]]:
        """Rows of one rollup for one level, periods starting in [start, end), oldest first.

        ``event_type`` None returns every event type's rows (with an ``event_type`` field).
        """
        if grain not in GRAINS:
            raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")
        period, *rest = row_columns(Grain.parse(grain))
        columns = [period, "event_type", *(c for c in rest if c != "event_type")]
        p = wh.param
        sql = (
            f"select {', '.join(columns)} from {wh.schema}.{rollup_for(Grain.parse(grain)).name} "
            f"where entity_type = {p('entity_type')} and entity_id = {p('entity_id')} "
            + (f"and event_type = {p('event_type')} " if event_type is not None else "")
            + f"and {period} >= {p('start')} and {period} < {p('end')} "
            f"order by {period}, event_type"
        )
        params: dict[str, Any] = {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "start": start,
            "end": end,
        }
        if event_type is not None:
            params["event_type"] = event_type
        rows = wh.query(sql, params)
        out = []
        for row in rows:
            record = dict(zip(["period_start", *columns[1:]], row, strict=True))
            for name in (*MEASURES, *PREV, "active_days", "days_in_month"):
                if record.get(name) is not None:
                    record[name] = int(record[name])
            for name in (*GROWTH, "avg_daily_events", "avg_daily_revenue_cents"):
                value = record.get(name)
                if value is not None and not isinstance(value, Decimal):
                    record[name] = Decimal(str(value))
            out.append(record)
        return out

    # ------------------------------------------------------------------ series

    def series(
        self,
        grain: str,
        entity_type: str,
        entity_id: str,
        start: date,
        end: date,
        *,
        event_type: str = "*",
    ) -> list[MetricsRow]:
        """The stored rows of one level and event type whose period starts in [start, end).

        Rows are sparse, as in the warehouse: a period without events has no row.
        """
        self._check_level(entity_type, entity_id, event_type)
        with self._connection() as wh:
            rows = self._select(wh, grain, entity_type, entity_id, event_type, start, end)
        return [MetricsRow.from_record(Grain.parse(grain), row) for row in rows]

    def daily(
        self, entity_type: str, entity_id: str, start: date, end: date, *, event_type: str = "*"
    ) -> list[MetricsRow]:
        """``daily_metrics`` rows for days in [start, end)."""
        return self.series("daily", entity_type, entity_id, start, end, event_type=event_type)

    def weekly(
        self, entity_type: str, entity_id: str, start: date, end: date, *, event_type: str = "*"
    ) -> list[MetricsRow]:
        """``weekly_metrics`` rows for weeks starting in [start, end), with growth."""
        return self.series("weekly", entity_type, entity_id, start, end, event_type=event_type)

    def monthly(
        self, entity_type: str, entity_id: str, start: date, end: date, *, event_type: str = "*"
    ) -> list[MetricsRow]:
        """``monthly_metrics`` rows for months starting in [start, end), with growth."""
        return self.series("monthly", entity_type, entity_id, start, end, event_type=event_type)

    # ------------------------------------------------------------------ latest period

    def latest_complete_period(self, grain: str, today: date | None = None) -> tuple[date, date]:
        """The last ``grain`` period that ended on or before ``today``, as [start, end)."""
        today = today or self.today()
        if grain == "daily":
            return today - timedelta(days=1), today
        if grain == "weekly":
            start = self.week_start_of(today) - timedelta(days=7)
            return start, start + timedelta(days=7)
        if grain == "monthly":
            start = add_months(month_start(today), -1)
            return start, month_start(today)
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")

    def latest_period(
        self, grain: str, entity_type: str, entity_id: str = "*", *, event_type: str = "*"
    ) -> LatestPeriod | None:
        """The last complete period's row with ``prev_*`` and growth; None if it has no events.

        Daily rows have no stored growth, so it is computed against the day before with the
        rollups' formula.
        """
        self._check_level(entity_type, entity_id, event_type)
        start, end = self.latest_complete_period(grain)
        with self._connection() as wh:
            record = self._latest(wh, grain, entity_type, entity_id, event_type, start, end)
        if record is None:
            return None
        fields = {k: v for k, v in record.items() if k not in ("grain", "period_end")}
        row = MetricsRow.from_record(Grain.parse(grain), fields)
        return LatestPeriod(**vars(row), period_end=end)

    def _latest(
        self,
        wh: Warehouse,
        grain: str,
        entity_type: str,
        entity_id: str,
        event_type: str,
        start: date,
        end: date,
    ) -> dict[str, Any] | None:
        if grain != "daily":
            rows = self._select(wh, grain, entity_type, entity_id, event_type, start, end)
            if not rows:
                return None
            row = rows[0]
        else:
            rows = self._select(
                wh, grain, entity_type, entity_id, event_type, start - timedelta(days=1), end
            )
            by_day = {r["period_start"]: r for r in rows}
            if start not in by_day:
                return None
            row = by_day[start]
            prev = by_day.get(start - timedelta(days=1))
            for measure, prev_name, growth_name in zip(MEASURES, PREV, GROWTH, strict=True):
                prev_value = prev[measure] if prev else None
                row[prev_name] = prev_value
                row[growth_name] = growth_pct(row[measure], prev_value)
        del row["event_type"]
        return {"grain": grain, **row, "period_end": end}

    # ------------------------------------------------------------------ cached period figures

    def period_entry(
        self, grain: str, entity_type: str, entity_id: str, period_start: date
    ) -> dict[str, Any]:
        """The cache entry (``key``, ``compute``, ``ttl``, ``tags``) of one period's figures,
        as `period_metrics` uses it and `MetricsCache.warm_cache` accepts it."""
        self._check_level(entity_type, entity_id, "*")
        if grain == "daily":
            key = daily_key(entity_type, entity_id, period_start)
            end = period_start + timedelta(days=1)
        elif grain == "weekly":
            key = weekly_key(entity_type, entity_id, period_start)
            end = period_start + timedelta(days=7)
        elif grain == "monthly":
            if period_start.day != 1:
                raise ValueError(f"a monthly period starts on the 1st, not {period_start}")
            key = monthly_key(entity_type, entity_id, period_start.year, period_start.month)
            end = add_months(period_start, 1)
        else:
            raise ValueError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}")

        def compute() -> dict[str, dict[str, Any]]:
            with self._connection() as wh:
                rows = self._select(wh, grain, entity_type, entity_id, None, period_start, end)
            out = {}
            for row in rows:
                del row["period_start"]  # the key already names the period
                out[row.pop("event_type")] = row
            return out

        tags = [
            grain_tag(grain),
            entity_tag(entity_type, entity_id),
            *period_tags(grain, period_start, end),
        ]
        return {"key": key, "compute": compute, "ttl": self.period_ttl, "tags": tags}

    def period_metrics(
        self, grain: str, entity_type: str, entity_id: str, period_start: date
    ) -> dict[str, MetricsRow]:
        """One period of one entity (or level), keyed by event type (``*`` is the total), cached.

        Cached under the documented ``metrics:<grain>:<type>:<id>:<period>`` key (as JSON that
        keeps Decimals and dates); returned as typed rows.
        """
        entry = self.period_entry(grain, entity_type, entity_id, period_start)
        compute: Callable[[], dict[str, dict[str, Any]]] = entry["compute"]
        if self.cache is None:
            by_event_type = compute()
        else:
            by_event_type = self.cache.get_or_compute(
                entry["key"], compute, ttl=entry["ttl"], tags=entry["tags"]
            )
        kind = Grain.parse(grain)
        return {
            event_type: MetricsRow.from_record(kind, {**values, "period_start": period_start})
            for event_type, values in by_event_type.items()
        }

    # ------------------------------------------------------------------ dashboards

    def dashboard_window(
        self, date_range: str, today: date | None = None
    ) -> tuple[str, date, date]:
        """(grain, start, end) of a dashboard range; a ValueError names the accepted ranges."""
        spec = DATE_RANGES.get(date_range) if isinstance(date_range, str) else None
        if spec is None:
            raise ValueError(
                f"date_range must be one of {', '.join(DATE_RANGES)}, not {date_range!r}"
            )
        today = today or self.today()
        if spec.grain == "daily":
            return "daily", today - timedelta(days=spec.periods), today
        end = month_start(today)
        return "monthly", add_months(end, -spec.periods), end

    def dashboard_entry(
        self,
        user_id: str | int,
        entity_type: str,
        entity_id: str,
        date_range: str,
        *,
        event_type: str = "*",
    ) -> dict[str, Any]:
        """The cache entry (``key``, ``compute``, ``ttl``, ``tags``) of one dashboard bundle,
        as `get_dashboard` uses it and `MetricsCache.warm_cache` accepts it."""
        today = self.today()
        memo_key = (user_id, entity_type, entity_id, date_range, event_type, today)
        try:
            planned = self._dashboard_plans.get(memo_key)
        except TypeError:  # unhashable argument: let validation explain
            planned = None
        if planned is None:
            planned = self._plan_dashboard(
                user_id, entity_type, entity_id, date_range, event_type, today
            )
            if len(self._dashboard_plans) >= 4096:
                self._dashboard_plans.clear()
            self._dashboard_plans[memo_key] = planned
        key, tags, grain, start, end = planned

        def compute() -> dict[str, Any]:
            level = (str(user_id), entity_type, entity_id, event_type)
            return self._build_dashboard(*level, date_range, today, grain, start, end)

        return {"key": key, "compute": compute, "ttl": self.dashboard_ttl, "tags": tags}

    def _plan_dashboard(
        self,
        user_id: str | int,
        entity_type: str,
        entity_id: str,
        date_range: str,
        event_type: str,
        today: date,
    ) -> tuple[str, tuple[str, ...], str, date, date]:
        """Key, tags and window of a dashboard (memoized by `dashboard_entry`: hits skip it)."""
        self._check_level(entity_type, entity_id, event_type)
        grain, start, end = self.dashboard_window(date_range, today)
        weekly_period = self.latest_complete_period("weekly", today)
        monthly_period = self.latest_complete_period("monthly", today)
        key = dashboard_key(
            user_id, entity_type, date_range, entity_id, event_type, today.isoformat()
        )
        tags = (
            user_tag(user_id),
            entity_tag(entity_type, entity_id),
            grain_tag(grain),
            grain_tag("weekly"),
            grain_tag("monthly"),
            *period_tags(grain, start, end),
            *period_tags("weekly", *weekly_period),
            *period_tags("monthly", *monthly_period),
        )
        return key, tags, grain, start, end

    def get_dashboard(
        self,
        user_id: str | int,
        entity_type: str,
        entity_id: str,
        date_range: str,
        *,
        event_type: str = "*",
    ) -> dict[str, Any]:
        """A JSON-ready dashboard bundle (series, totals, latest weekly/monthly growth), cached
        whole and tagged by user, entity, grain and the periods it read."""
        entry = self.dashboard_entry(
            user_id, entity_type, entity_id, date_range, event_type=event_type
        )
        compute: Callable[[], dict[str, Any]] = entry["compute"]
        if self.cache is None:
            return compute()
        return self.cache.get_or_compute(
            entry["key"], compute, ttl=entry["ttl"], tags=entry["tags"]
        )

    def get_dashboard_json(
        self,
        user_id: str | int,
        entity_type: str,
        entity_id: str,
        date_range: str,
        *,
        event_type: str = "*",
    ) -> bytes:
        """The same bundle (and the same cache entry) as `get_dashboard`, as JSON bytes ready to
        send: a hit skips decoding and re-encoding."""
        entry = self.dashboard_entry(
            user_id, entity_type, entity_id, date_range, event_type=event_type
        )
        if self.cache is None:
            return dumps(entry["compute"]())
        return self.cache.get_or_compute_json(
            entry["key"], entry["compute"], ttl=entry["ttl"], tags=entry["tags"]
        )

    async def cached_dashboard_json(
        self,
        user_id: str | int,
        entity_type: str,
        entity_id: str,
        date_range: str,
        *,
        event_type: str = "*",
    ) -> bytes | None:
        """`get_dashboard_json`'s bytes when the cache holds a fresh bundle, read on the event
        loop; None otherwise (then call `get_dashboard_json` in a worker thread)."""
        if self.cache is None:
            return None
        entry = self.dashboard_entry(
            user_id, entity_type, entity_id, date_range, event_type=event_type
        )
        return await self.cache.fresh_json(entry["key"], ttl=entry["ttl"], tags=entry["tags"])

    def _build_dashboard(
        self,
        user_id: str,
        entity_type: str,
        entity_id: str,
        event_type: str,
        date_range: str,
        today: date,
        grain: str,
        start: date,
        end: date,
    ) -> dict[str, Any]:
        """Query the warehouse and shape the bundle: dense columnar series (zeros where the
        rollup has no row), totals of the additive measures, and the latest periods."""
        with self._connection() as wh:
            rows = self._select(wh, grain, entity_type, entity_id, event_type, start, end)
            latest = {
                g: self._latest(
                    wh,
                    g,
                    entity_type,
                    entity_id,
                    event_type,
                    *self.latest_complete_period(g, today),
                )
                for g in ("weekly", "monthly")
            }
        by_period = {row["period_start"]: row for row in rows}
        periods: list[date] = []
        current = start
        while current < end:
            periods.append(current)
            current = current + timedelta(days=1) if grain == "daily" else add_months(current, 1)
        columns: dict[str, list[Any]] = {"period_start": [p.isoformat() for p in periods]}
        names = MEASURES if grain == "daily" else (*MEASURES, *GROWTH)
        for name in names:
            default = 0 if name in MEASURES else None
            columns[name] = [
                _plain(by_period[p][name]) if p in by_period else default for p in periods
            ]
        totals = {
            "event_count": sum(columns["event_count"]),
            "revenue_cents": sum(columns["revenue_cents"]),
            "active_periods": sum(1 for n in columns["event_count"] if n),
        }
        return {
            "user_id": user_id,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "event_type": event_type,
            "date_range": date_range,
            "as_of": today.isoformat(),
            "grain": grain,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "series": columns,
            # Distinct actors are not additive across periods, so there is no unique_actors total.
            "totals": totals,
            "latest": {
                g: None if row is None else {k: _plain(v) for k, v in row.items()}
                for g, row in latest.items()
            },
            "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
