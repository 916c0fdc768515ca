"""Valid definitions of every metric type give exactly what plain Python computes from the
same rows, on every warehouse (DuckDB, PostgreSQL, Spark): with dimensions (columns and
properties.<key>), filters, `where` and periods, on the events and on the rollups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from custom_metrics import compile_metric
from tests.custom_metrics.support import (
    aggregate,
    as_result,
    assert_same,
    dim_value,
    json_text,
    ratio,
    reference,
    utc,
)
from tests.targets import on_every_warehouse
from warehouse import Warehouse

Row = Mapping[str, Any]
ALL = lambda r: True  # noqa: E731


def col(name: str) -> Callable[[list[Row]], list[Any]]:
    return lambda rows: [dim_value(r, name) for r in rows]


@dataclass
class Case:
    """A definition, its period, and the same metric in plain Python."""

    id: str
    definition: dict[str, Any]
    keep: Callable[[Row], bool]
    value: Callable[[list[Row]], Any]
    source: str = "events"
    start: date | None = None
    end: date | None = None


def _period_keep(case: Case) -> Callable[[Row], bool]:
    if case.start is None or case.end is None:
        return case.keep
    column = {
        "events": "occurred_at",
        "daily_metrics": "metric_date",
        "weekly_metrics": "week_start",
        "monthly_metrics": "month_start",
    }[case.source]
    lo: Any = utc(case.start) if case.source == "events" else case.start
    hi: Any = utc(case.end) if case.source == "events" else case.end
    return lambda r: case.keep(r) and lo <= r[column] < hi


def d(metric_type: str, formula: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{metric_type} {formula}",
        "metric_type": metric_type,
        "data_source": extra.pop("data_source", "events"),
        "calculation_formula": formula,
        **extra,
    }


JAN10, FEB10 = date(2025, 1, 10), date(2025, 2, 10)

CASES = [
    Case(
        "count-star-by-type-filter-period",
        d("COUNT", "*", dimensions=["event_type"], filters={"entity_type": "license"}),
        lambda r: r["entity_type"] == "license",
        lambda rows: aggregate("count_star", rows),
        start=JAN10,
        end=FEB10,
    ),
    Case(
        "count-column-by-industry-where",
        d(
            "COUNT",
            "actor_id",
            dimensions=["properties.industry"],
            where="revenue_cents > 100 or event_type = 'click'",
        ),
        lambda r: (
            (r["revenue_cents"] is not None and r["revenue_cents"] > 100)
            or r["event_type"] == "click"
        ),
        lambda rows: aggregate("count", col("actor_id")(rows)),
    ),
    Case(
        "count-if-no-dimensions",
        d("COUNT", "count_if(event_type = 'purchase')"),
        ALL,
        lambda rows: sum(1 for r in rows if r["event_type"] == "purchase"),
    ),
    Case(
        "count-if-empty-period",
        d("COUNT", "count_if(event_type = 'purchase')"),
        ALL,
        lambda rows: sum(1 for r in rows if r["event_type"] == "purchase"),
        start=date(2030, 1, 1),
        end=date(2030, 2, 1),
    ),
    Case(
        "sum-by-entity-type-list-filter-where",
        d(
            "SUM",
            "revenue_cents",
            dimensions=["entity_type"],
            filters={"event_type": ["purchase", "license_renewal"]},
            where="actor_id is not null",
        ),
        lambda r: r["event_type"] in ("purchase", "license_renewal") and r["actor_id"] is not None,
        lambda rows: aggregate("sum", col("revenue_cents")(rows)),
    ),
    Case(
        "sum-true-division-by-category",
        d("SUM", "revenue_cents / 100", dimensions=["properties.category"]),
        ALL,
        lambda rows: aggregate(
            "sum",
            [None if v is None else Decimal(v) / 100 for v in col("revenue_cents")(rows)],
        ),
    ),
    Case(
        "sum-case-wrapped",
        d("SUM", "sum(case when event_type = 'purchase' then revenue_cents else 0 end)"),
        ALL,
        lambda rows: aggregate(
            "sum",
            [(r["revenue_cents"] if r["event_type"] == "purchase" else 0) for r in rows],
        ),
    ),
    Case(
        "sum-scalar-functions",
        d(
            "SUM",
            "round(abs(revenue_cents - 5000) / 3, 2) + greatest(revenue_cents, 10) "
            "- least(revenue_cents, 10) + length(lower(upper(event_type)))",
            dimensions=["event_type"],
        ),
        ALL,
        lambda rows: aggregate(
            "sum",
            [
                None
                if r["revenue_cents"] is None
                else round(Decimal(abs(r["revenue_cents"] - 5000)) / 3, 2)
                + max(r["revenue_cents"], 10)
                - min(r["revenue_cents"], 10)
                + len(r["event_type"])
                for r in rows
            ],
        ),
    ),
    Case(
        "average-by-tier-json-in-period",
        d(
            "AVERAGE",
            "revenue_cents",
            dimensions=["properties.tier"],
            where="properties.industry in ('retail', 'finance')",
        ),
        lambda r: json_text(r["properties"], "industry") in ("retail", "finance"),
        lambda rows: aggregate("avg", col("revenue_cents")(rows)),
        start=JAN10,
        end=FEB10,
    ),
    Case(
        "average-coalesce-nullif",
        d("AVERAGE", "coalesce(nullif(revenue_cents, 0), -1)", dimensions=["entity_type"]),
        ALL,
        lambda rows: aggregate("avg", [(r["revenue_cents"] or -1) for r in rows]),
    ),
    Case(
        "distinct-count-two-dims-json-filter",
        d(
            "DISTINCT_COUNT",
            "actor_id",
            dimensions=["event_type", "properties.industry"],
            filters={"properties.tier": "gold"},
        ),
        lambda r: json_text(r["properties"], "tier") == "gold",
        lambda rows: aggregate("distinct", col("actor_id")(rows)),
        start=JAN10,
        end=FEB10,
    ),
    Case(
        "distinct-count-wrapped-quoted-values",
        d(
            "DISTINCT_COUNT",
            "count(distinct entity_id)",
            filters={"properties.industry": ["O'Brien & Co", "café"]},
        ),
        lambda r: json_text(r["properties"], "industry") in ("O'Brien & Co", "café"),
        lambda rows: aggregate("distinct", col("entity_id")(rows)),
    ),
    Case(
        "distinct-count-json-number-filter",
        d("DISTINCT_COUNT", "actor_id", filters={"properties.seats": [3, 4, 5]}),
        lambda r: json_text(r["properties"], "seats") in ("3", "4", "5"),
        lambda rows: aggregate("distinct", col("actor_id")(rows)),
    ),
    Case(
        "percentile-field-by-entity-type",
        d("PERCENTILE", "revenue_cents", percentile=0.9, dimensions=["entity_type"]),
        ALL,
        lambda rows: aggregate("percentile", col("revenue_cents")(rows), 0.9),
    ),
    Case(
        "percentile-inline-between",
        d(
            "PERCENTILE",
            "percentile(revenue_cents, 0.5)",
            where="revenue_cents between 10 and 50000",
        ),
        lambda r: r["revenue_cents"] is not None and 10 <= r["revenue_cents"] <= 50000,
        lambda rows: aggregate("percentile", col("revenue_cents")(rows), 0.5),
    ),
    Case(
        "max-by-category-like",
        d("MAX", "revenue_cents", dimensions=["properties.category"], where="event_type like 'p%'"),
        lambda r: r["event_type"].startswith("p"),
        lambda rows: aggregate("max", col("revenue_cents")(rows)),
    ),
    Case(
        "min-by-type-coalesce-neq",
        d(
            "MIN",
            "min(revenue_cents)",
            dimensions=["event_type"],
            where="coalesce(actor_id, 'none') <> 'none' and not (entity_type = 'org')",
        ),
        lambda r: r["actor_id"] is not None and r["entity_type"] != "org",
        lambda rows: aggregate("min", col("revenue_cents")(rows)),
    ),
    Case(
        "ratio-count-if-by-industry",
        d(
            "RATIO",
            "count_if(event_type = 'purchase') / count(*)",
            dimensions=["properties.industry"],
        ),
        ALL,
        lambda rows: ratio(sum(1 for r in rows if r["event_type"] == "purchase"), len(rows)),
    ),
    Case(
        "ratio-sum-per-customer-period",
        d("RATIO", "sum(revenue_cents) / count(distinct actor_id)", dimensions=["entity_type"]),
        ALL,
        lambda rows: ratio(
            aggregate("sum", col("revenue_cents")(rows)),
            aggregate("distinct", col("actor_id")(rows)),
        ),
        start=JAN10,
        end=FEB10,
    ),
    Case(
        "ratio-zero-denominator-is-null",
        d(
            "RATIO",
            "sum(revenue_cents) / sum(case when event_type = 'nope' then 1 else 0 end)",
            dimensions=["event_type"],
        ),
        ALL,
        lambda rows: None,
    ),
    Case(
        "ratio-integer-division-does-not-truncate",
        d("RATIO", "(count(*) + 0) / (count(*) * 3)", dimensions=["entity_type"]),
        ALL,
        lambda rows: 1 / 3,
    ),
    Case(
        "count-where-on-date-and-case",
        d(
            "COUNT",
            "case when revenue_cents is null then 'none' else 'some' end",
            where="event_date >= '2025-01-15' and event_date < '2025-02-01'",
            dimensions=["event_date"],
        ),
        lambda r: date(2025, 1, 15) <= r["event_date"] < date(2025, 2, 1),
        lambda rows: len(rows),
    ),
    Case(
        "count-filter-null",
        d("COUNT", "*", filters={"actor_id": None}, dimensions=["event_type"]),
        lambda r: r["actor_id"] is None,
        lambda rows: len(rows),
    ),
    Case(
        "daily-sum-top-level-period",
        d(
            "SUM",
            "event_count",
            data_source="daily_metrics",
            dimensions=["event_type"],
            filters={"entity_type": "*", "entity_id": "*"},
        ),
        lambda r: r["entity_type"] == "*" and r["entity_id"] == "*",
        lambda rows: aggregate("sum", col("event_count")(rows)),
        source="daily_metrics",
        start=date(2025, 1, 5),
        end=date(2025, 1, 20),
    ),
    Case(
        "weekly-average-growth-where",
        d(
            "AVERAGE",
            "revenue_growth_pct",
            data_source="weekly_metrics",
            dimensions=["entity_type"],
            where="prev_event_count is not null and active_days >= 3",
        ),
        lambda r: r["prev_event_count"] is not None and r["active_days"] >= 3,
        lambda rows: aggregate("avg", col("revenue_growth_pct")(rows)),
        source="weekly_metrics",
        start=date(2025, 1, 6),
        end=date(2025, 2, 17),
    ),
    Case(
        "weekly-percentile-by-week",
        d(
            "PERCENTILE",
            "avg_daily_events",
            percentile=0.25,
            data_source="weekly_metrics",
            dimensions=["week_start"],
        ),
        ALL,
        lambda rows: aggregate("percentile", col("avg_daily_events")(rows), 0.25),
        source="weekly_metrics",
    ),
    Case(
        "monthly-max-ratio",
        d(
            "RATIO",
            "max(unique_actors) / sum(days_in_month)",
            data_source="monthly_metrics",
            dimensions=["month_start"],
            filters={"event_type": "*"},
        ),
        lambda r: r["event_type"] == "*",
        lambda rows: ratio(
            aggregate("max", col("unique_actors")(rows)),
            aggregate("sum", col("days_in_month")(rows)),
        ),
        source="monthly_metrics",
    ),
    Case(
        "monthly-distinct-period",
        d("DISTINCT_COUNT", "entity_id", data_source="monthly_metrics"),
        ALL,
        lambda rows: aggregate("distinct", col("entity_id")(rows)),
        source="monthly_metrics",
        start=date(2025, 2, 1),
        end=date(2025, 4, 1),
    ),
]


def _rows(case: Case, events: list[dict[str, Any]], rollups: dict[str, Any]) -> list[Row]:
    return events if case.source == "events" else rollups[case.source]


@on_every_warehouse("wh")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_python(
    case: Case, wh: Warehouse, events: list[dict[str, Any]], rollups: dict[str, Any]
) -> None:
    compiled = compile_metric(case.definition, wh.dialect, case.start, case.end, schema=wh.schema)
    rows, columns = wh.query_with_columns(compiled.sql, compiled.params)
    assert columns == list(compiled.columns)
    assert columns[-1] == "value"
    expected = reference(
        _rows(case, events, rollups),
        case.definition.get("dimensions", []),
        _period_keep(case),
        case.value,
    )
    assert_same(as_result(rows), expected)


def test_every_metric_type_is_covered() -> None:
    covered = {c.definition["metric_type"] for c in CASES}
    assert covered == {
        "COUNT",
        "SUM",
        "AVERAGE",
        "DISTINCT_COUNT",
        "PERCENTILE",
        "RATIO",
        "MAX",
        "MIN",
    }


@on_every_warehouse("wh")
def test_lookback_days_window(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    definition = d("DISTINCT_COUNT", "actor_id", lookback_days=30)
    end = date(2025, 2, 15)
    compiled = compile_metric(definition, wh.dialect, date(2025, 2, 14), end, schema=wh.schema)
    (row,) = wh.query(compiled.sql, compiled.params)
    lo, hi = utc(end - timedelta(days=30)), utc(end)
    expected = len({r["actor_id"] for r in events if lo <= r["occurred_at"] < hi} - {None})
    assert row[0] == expected


@on_every_warehouse("wh")
def test_datetime_period_bounds_on_events(wh: Warehouse, events: list[dict[str, Any]]) -> None:
    from datetime import UTC, datetime

    start = datetime(2025, 1, 10, 12, 30, tzinfo=UTC)
    end = datetime(2025, 1, 11, 6, 0, tzinfo=UTC)
    compiled = compile_metric(d("COUNT", "*"), wh.dialect, start, end, schema=wh.schema)
    (row,) = wh.query(compiled.sql, compiled.params)
    assert row[0] == sum(1 for r in events if start <= r["occurred_at"] < end)
