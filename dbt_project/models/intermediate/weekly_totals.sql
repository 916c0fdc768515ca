{#-
  Each week's measures at six levels, from the events of that week: deduplicated events, exact
  distinct actors (never summed from days), revenue and active days. Recomputes the weeks that
  overlap the run window; weekly_metrics adds the averages and week-over-week growth.
-#}
{{ config(
    incremental_strategy='window_replace',
    incremental_predicates=[metrics_period_range('week_start', 'week')],
    partition_by=metrics_partition_by('week_start'),
    indexes=([{'columns': ['week_start']}] if target.type == 'postgres' else []),
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
    where {{ metrics_events_filter('event_date', 'week') }}

),

with_week as (

    select
        {{ week_start_of('event_date') }} as week_start,
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
        week_start,
        {{ rollup_dimension('entity_type') }} as entity_type,
        {{ rollup_dimension('entity_id') }} as entity_id,
        {{ rollup_dimension('event_type') }} as event_type,
        {{ rollup_measures() }},
        cast(count(distinct event_date) as integer) as active_days
    from with_week
    group by {{ rollup_grouping_sets(['week_start']) }}

)

select * from rolled_up
