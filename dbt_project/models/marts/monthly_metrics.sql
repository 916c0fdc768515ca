{#-
  Monthly rollup at six levels: each month's totals with its number of days, daily averages
  over them, the previous month's values and month-over-month growth. A run recomputes the
  window's months and the month after them, whose growth compares against a changed month.
-#}
{{ config(
    incremental_strategy='window_replace',
    incremental_predicates=[metrics_period_range('month_start', 'month', with_next=true)],
    partition_by=metrics_partition_by('month_start'),
    indexes=metrics_rollup_indexes('month_start'),
) }}

with totals as (

    select
        month_start,
        entity_type,
        entity_id,
        event_type,
        event_count,
        unique_actors,
        revenue_cents,
        active_days
    from {{ ref('monthly_totals') }}
    where {{ metrics_period_range('month_start', 'month', with_previous=true, with_next=true) }}

),

with_previous as (

    select
        cur.*,
        prev.event_count as prev_event_count,
        prev.unique_actors as prev_unique_actors,
        prev.revenue_cents as prev_revenue_cents
    from totals as cur
    left join totals as prev
        on
            {{ shift_date('month', -1, 'cur.month_start') }} = prev.month_start
            and cur.entity_type = prev.entity_type
            and cur.entity_id = prev.entity_id
            and cur.event_type = prev.event_type
    where {{ metrics_period_range('cur.month_start', 'month', with_next=true) }}

),

with_days as (

    select
        *,
        {{ days_in_month('month_start') }} as days_in_month
    from with_previous

),

final as (

    select
        month_start,
        entity_type,
        entity_id,
        event_type,
        event_count,
        unique_actors,
        revenue_cents,
        days_in_month,
        active_days,
        {{ daily_average('event_count', 'days_in_month') }} as avg_daily_events,
        {{ daily_average('revenue_cents', 'days_in_month') }} as avg_daily_revenue_cents,
        prev_event_count,
        prev_unique_actors,
        prev_revenue_cents,
        {{ growth_pct('event_count', 'prev_event_count') }} as event_count_growth_pct,
        {{ growth_pct('unique_actors', 'prev_unique_actors') }} as unique_actors_growth_pct,
        {{ growth_pct('revenue_cents', 'prev_revenue_cents') }} as revenue_growth_pct
    from with_days

)

select * from final
