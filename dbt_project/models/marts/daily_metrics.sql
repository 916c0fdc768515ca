{#- Daily rollup at six levels: deduplicated events, exact distinct actors, revenue per UTC day. -#}
{{ config(
    incremental_strategy='window_replace',
    incremental_predicates=[metrics_period_range('metric_date', 'day')],
    partition_by=metrics_partition_by('metric_date'),
    indexes=metrics_rollup_indexes('metric_date'),
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
    where {{ metrics_events_filter('event_date', 'day') }}

),

rolled_up as (

    select
        event_date as metric_date,
        {{ rollup_dimension('entity_type') }} as entity_type,
        {{ rollup_dimension('entity_id') }} as entity_id,
        {{ rollup_dimension('event_type') }} as event_type,
        {{ rollup_measures() }}
    from events
    group by {{ rollup_grouping_sets(['event_date']) }}

)

select * from rolled_up
