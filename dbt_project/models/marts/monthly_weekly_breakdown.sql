{#-
  The weeks of each month: for every week overlapping a month, the measures over only the days
  of that week inside the month. Recomputes the months that overlap the run window.
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

with_periods as (

    select
        {{ month_start_of('event_date') }} as month_start,
        {{ week_start_of('event_date') }} as week_start,
        entity_type, entity_id, event_type, actor_id, revenue_cents
    from events

),

rolled_up as (

    select
        month_start,
        week_start,
        {{ rollup_dimension('entity_type') }} as entity_type,
        {{ rollup_dimension('entity_id') }} as entity_id,
        {{ rollup_dimension('event_type') }} as event_type,
        {{ rollup_measures() }}
    from with_periods
    group by {{ rollup_grouping_sets(['month_start', 'week_start']) }}

)

select * from rolled_up
