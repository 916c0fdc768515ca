"""The rollups written as plain SQL, run directly: the floor a full backfill is compared with.

The same work as the dbt models (deduplicate, six levels by grouping sets, exact distinct
actors per grain, previous period and growth), with none of dbt's or Dagster's machinery:
no incremental windows, no contracts, no tests, no orchestration. Weeks start on Monday.
"""

from __future__ import annotations

LEVELS = """grouping sets (
    ({p}, entity_type, entity_id, event_type), ({p}, entity_type, entity_id),
    ({p}, entity_type, event_type), ({p}, entity_type), ({p}, event_type), ({p}))"""
DIMS = """case when grouping(entity_type) = 1 then '*' else entity_type end as entity_type,
    case when grouping(entity_id) = 1 then '*' else entity_id end as entity_id,
    case when grouping(event_type) = 1 then '*' else event_type end as event_type"""
MEASURES = """count(*) as event_count, count(distinct actor_id) as unique_actors,
    coalesce(sum(revenue_cents), 0) as revenue_cents"""


def floor_statements(source: str, schema: str, dialect: str) -> list[str]:
    """CREATE TABLE AS statements building every rollup into `schema` from `source`."""
    week = "cast(date_trunc('week', event_date) as date)"
    month = "cast(date_trunc('month', event_date) as date)"
    prev_month = (
        "cast(c.month_start - interval '1 month' as date)"
        if dialect == "postgres"
        else "cast(c.month_start - interval 1 month as date)"
    )
    days_in_month = (
        "cast(extract(day from (month_start + interval '1 month' - interval '1 day')) as int)"
        if dialect == "postgres"
        else "cast(extract(day from last_day(month_start)) as int)"
    )

    def growth(column: str) -> str:
        return (
            f"round(cast(100 * (c.{column} - p.{column}) as numeric(38, 6)) "
            f"/ nullif(p.{column}, 0), 2) as {column}_growth_pct"
        )

    def with_growth(name: str, period: str, previous: str, days: str) -> str:
        return f"""
        create table {schema}.{name} as
        select c.*,
            cast(c.event_count as numeric(38, 6)) / {days} as avg_daily_events,
            cast(c.revenue_cents as numeric(38, 6)) / {days} as avg_daily_revenue_cents,
            p.event_count as prev_event_count, p.unique_actors as prev_unique_actors,
            p.revenue_cents as prev_revenue_cents,
            {growth("event_count")}, {growth("unique_actors")}, {growth("revenue_cents")}
        from {schema}.{name}_base as c
        left join {schema}.{name}_base as p
            on p.{period} = {previous} and p.entity_type = c.entity_type
            and p.entity_id = c.entity_id and p.event_type = c.event_type
        """

    def base(name: str, period_expr: str, period: str, extra: str = "") -> str:
        return f"""
        create table {schema}.{name}_base as
        select {period}, {DIMS}, {MEASURES},
            count(distinct event_date) as active_days{extra}
        from (select {period_expr} as {period}, * from {schema}.events) as e
        group by {LEVELS.format(p=period)}
        """

    # Spark's timestamps are instants shown in the session time zone (UTC here).
    event_date = (
        "cast(occurred_at as date)"
        if dialect == "spark"
        else "cast(occurred_at at time zone 'UTC' as date)"
    )
    return [
        f"create schema if not exists {schema}",
        f"""
        create table {schema}.events as
        select event_id, occurred_at, {event_date} as event_date,
            event_type, actor_id, entity_type, entity_id, revenue_cents, properties, ingested_at
        from (
            select *, row_number() over (partition by event_id order by ingested_at) as rank
            from {source}
        ) as ranked
        where rank = 1
        """,
        f"""
        create table {schema}.daily_metrics as
        select event_date as metric_date, {DIMS}, {MEASURES}
        from {schema}.events
        group by {LEVELS.format(p="event_date")}
        """,
        base("weekly_metrics", week, "week_start"),
        with_growth("weekly_metrics", "week_start", "cast(c.week_start - 7 as date)", "7"),
        base("monthly_metrics", month, "month_start"),
        with_growth(
            "monthly_metrics",
            "month_start",
            prev_month,
            days_in_month.replace("month_start", "c.month_start"),
        ),
        f"""
        create table {schema}.monthly_weekly_breakdown as
        select month_start, week_start, {DIMS}, {MEASURES}
        from (select {month} as month_start, {week} as week_start, * from {schema}.events) as e
        group by {LEVELS.format(p="month_start, week_start")}
        """,
    ]
