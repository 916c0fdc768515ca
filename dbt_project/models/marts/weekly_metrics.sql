{#-
  Weekly rollup at six levels: each week's totals with daily averages (over 7 days), the
  previous week's values and week-over-week growth. A run recomputes the window's weeks and the
  week after them, whose growth compares against a week that may have changed.
-#}
{{ config(
    incremental_strategy='window_replace',
    incremental_predicates=[metrics_period_range('week_start', 'week', with_next=true)],
    partition_by=metrics_partition_by('week_start'),
    indexes=metrics_rollup_indexes('week_start'),
) }}

with totals as (

    select
        week_start,
        entity_type,
        entity_id,
        event_type,
        event_count,
        unique_actors,
        revenue_cents,
        active_days
    from {{ ref('weekly_totals') }}
    where {{ metrics_period_range('week_start', 'week', with_previous=true, with_next=true) }}

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
            {{ shift_date('week', -1, 'cur.week_start') }} = prev.week_start
            and cur.entity_type = prev.entity_type
            and cur.entity_id = prev.entity_id
            and cur.event_type = prev.event_type
    where {{ metrics_period_range('cur.week_start', 'week', with_next=true) }}

),

final as (

    select
        week_start,
        entity_type,
        entity_id,
        event_type,
        event_count,
        unique_actors,
        revenue_cents,
        active_days,
        {{ daily_average('event_count', 7) }} as avg_daily_events,
        {{ daily_average('revenue_cents', 7) }} as avg_daily_revenue_cents,
        prev_event_count,
        prev_unique_actors,
        prev_revenue_cents,
        {{ growth_pct('event_count', 'prev_event_count') }} as event_count_growth_pct,
        {{ growth_pct('unique_actors', 'prev_unique_actors') }} as unique_actors_growth_pct,
        {{ growth_pct('revenue_cents', 'prev_revenue_cents') }} as revenue_growth_pct
    from with_previous

)

select * from final
