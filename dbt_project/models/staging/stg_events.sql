{#-
  Typed, deduplicated events: one row per event_id, the earliest delivery wins. Re-deliveries
  carry the same occurred_at, so deduplicating inside the window's days is complete.
-#}
{%- set window = metrics_window() -%}
{%- do plain_identifier(source('raw', 'events').schema, 'METRICS_SOURCE_SCHEMA') -%}
{{ config(
    incremental_strategy='window_replace',
    incremental_predicates=[metrics_period_range('event_date', 'day')],
    partition_by=metrics_partition_by('event_date'),
    indexes=(
        [{'columns': ['event_date']}, {'columns': ['event_id'], 'unique': true}]
        if target.type == 'postgres' else []
    ),
    contract={'enforced': true},
) }}

with source as (

    select * from {{ source('raw', 'events') }}
    {% if window is not none -%}
    where occurred_at >= {{ metrics_timestamp_literal(window.start) }}
      and occurred_at < {{ metrics_timestamp_literal(window.end) }}
    {%- endif %}

),

typed as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(occurred_at as {{ metrics_timestamptz() }}) as occurred_at,
        cast(event_type as {{ dbt.type_string() }}) as event_type,
        cast(actor_id as {{ dbt.type_string() }}) as actor_id,
        cast(entity_type as {{ dbt.type_string() }}) as entity_type,
        cast(entity_id as {{ dbt.type_string() }}) as entity_id,
        cast(revenue_cents as bigint) as revenue_cents,
        properties,
        cast(ingested_at as {{ metrics_timestamptz() }}) as ingested_at
    from source

),

ranked as (

    select
        *,
        row_number() over (
            partition by event_id
            order by ingested_at, occurred_at
        ) as delivery_rank
    from typed

),

deduplicated as (

    select
        event_id,
        occurred_at,
        {{ utc_date_of('occurred_at') }} as event_date,
        event_type,
        actor_id,
        entity_type,
        entity_id,
        revenue_cents,
        properties,
        ingested_at
    from ranked
    where delivery_rank = 1

)

{#
  On DuckDB the rows are stored in day order: every rollup then aggregates day after day (about
  a fifth faster at 10M events than over rows in hash order), and a window's reads skip other
  days' row groups by their min/max. PostgreSQL reaches a window's days through the index.
#}
select * from deduplicated
{%- if target.type == 'duckdb' %}
order by event_date
{%- endif %}
