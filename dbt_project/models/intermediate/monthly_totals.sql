{#-
  Each month's measures at six levels, from the events of that month: deduplicated events, exact
  distinct actors (never summed from days), revenue and active days. Recomputes the months that
  overlap the run window; monthly_metrics adds the averages and month-over-month growth.
-#}
{{ config(
    incremental_strategy='window_replace',
    incremental_predicates=[metrics_period_range('month_start', 'month')],
    partition_by=metrics_partition_by('month_start'),
    indexes=([{'columns': ['month_start']}] if target.type == 'postgres' else []),
) }}

with events as (

    select
        event_date,
        entity_type,
        entity_id,
        event_type,
        actor_id,
        revenue_cents
    from {{ ref('stg_events') }}
    where {{ metrics_events_filter('event_date', 'month') }}

),

with_month as (

    select
        {{ month_start_of('event_date') }} as month_start,
        event_date,
        entity_type,
        entity_id,
        event_type,
        actor_id,
        revenue_cents
    from events

),

rolled_up as (

    select
        month_start,
        {{ rollup_dimension('entity_type') }} as entity_type,
        {{ rollup_dimension('entity_id') }} as entity_id,
        {{ rollup_dimension('event_type') }} as event_type,
        {{ rollup_measures() }},
        cast(count(distinct event_date) as integer) as active_days
    from with_month
    group by {{ rollup_grouping_sets(['month_start']) }}

)

select * from rolled_up
