{#-
  The body of a rollup with growth (weekly_metrics, monthly_metrics), one CTE per step:
  events of the periods that overlap the window -> their period -> six levels with measures and
  active days -> the stored neighbours (period before: prev_* of the first period; period after:
  refreshed so its growth is never stale) -> previous-period values -> averages and growth.
  Distinct actors are counted over the period's events, never summed from shorter periods.
-#}
{% macro rollup_with_growth(period_column, grain) -%}
{%- set periods = metrics_periods(grain) -%}
{%- set with_neighbours = is_incremental() and periods is not none -%}
{%- set period_of = week_start_of('event_date') if grain == 'week' else month_start_of('event_date') -%}
{%- set dimensions = ['entity_type', 'entity_id', 'event_type'] -%}

with events as (

    select event_date, entity_type, entity_id, event_type, actor_id, revenue_cents
    from {{ ref('stg_events') }}
    where {{ metrics_events_filter('event_date', grain) }}

),

with_period as (

    select
        {{ period_of }} as {{ period_column }},
        event_date, entity_type, entity_id, event_type, actor_id, revenue_cents
    from events

),

rolled_up as (

    select
        {{ period_column }},
        {{ rollup_dimension('entity_type') }} as entity_type,
        {{ rollup_dimension('entity_id') }} as entity_id,
        {{ rollup_dimension('event_type') }} as event_type,
        {{ rollup_measures() }},
        cast(count(distinct event_date) as integer) as active_days
    from with_period
    group by {{ rollup_grouping_sets([period_column]) }}

),

{% if with_neighbours -%}
stored_neighbours as (

    select
        {{ period_column }}, entity_type, entity_id, event_type,
        event_count, unique_actors, revenue_cents, active_days
    from {{ this }}
    where {{ period_column }} in (
        {{ metrics_date_literal(periods.previous) }}, {{ metrics_date_literal(periods.next) }}
    )

),

{% endif -%}
measured as (

    select * from rolled_up
    {%- if with_neighbours %}
    union all
    select * from stored_neighbours
    {%- endif %}

),

with_previous as (

    select
        cur.*,
        prev.event_count as prev_event_count,
        prev.unique_actors as prev_unique_actors,
        prev.revenue_cents as prev_revenue_cents
    from measured as cur
    left join measured as prev
        on prev.{{ period_column }} = {{ shift_date(grain, -1, 'cur.' ~ period_column) }}
        {%- for dimension in dimensions %}
        and prev.{{ dimension }} = cur.{{ dimension }}
        {%- endfor %}

),

with_days as (

    select
        *,
        {%- if grain == 'week' %}
        7 as days_in_period
        {%- else %}
        cast({{ dbt.datediff(period_column, dbt.dateadd('month', 1, period_column), 'day') }} as integer) as days_in_period
        {%- endif %}
    from with_previous
    {%- if with_neighbours %}
    where {{ period_column }} >= {{ metrics_date_literal(periods.first) }}
    {%- endif %}

),

final as (

    select
        {{ period_column }},
        entity_type,
        entity_id,
        event_type,
        event_count,
        unique_actors,
        revenue_cents,
        {%- if grain == 'month' %}
        days_in_period as days_in_month,
        {%- endif %}
        active_days,
        {{ daily_average('event_count', 'days_in_period') }} as avg_daily_events,
        {{ daily_average('revenue_cents', 'days_in_period') }} as avg_daily_revenue_cents,
        prev_event_count,
        prev_unique_actors,
        prev_revenue_cents,
        {{ growth_pct('event_count', 'prev_event_count') }} as event_count_growth_pct,
        {{ growth_pct('unique_actors', 'prev_unique_actors') }} as unique_actors_growth_pct,
        {{ growth_pct('revenue_cents', 'prev_revenue_cents') }} as revenue_growth_pct
    from with_days

)

select * from final
{%- endmacro %}
