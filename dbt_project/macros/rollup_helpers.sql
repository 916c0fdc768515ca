{#- Small cross-database helpers shared by the rollup models. -#}

{#- First day of the configured week (METRICS_WEEK_START) containing a date. -#}
{% macro week_start_of(date_column) -%}
    {%- set start_isodow = metrics_week_start_index() + 1 -%}
    cast({{ dbt.dateadd('day', '-1 * ((' ~ iso_weekday(date_column) ~ ' - ' ~ start_isodow ~ ' + 7) % 7)', date_column) }} as date)
{%- endmacro %}


{#- 1 for Monday ... 7 for Sunday. -#}
{% macro iso_weekday(date_column) -%}
    {%- set field = 'dayofweek_iso' if target.type == 'spark' else 'isodow' -%}
    cast(extract({{ field }} from {{ date_column }}) as integer)
{%- endmacro %}


{% macro month_start_of(date_column) -%}
    cast({{ dbt.date_trunc('month', date_column) }} as date)
{%- endmacro %}


{% macro shift_date(datepart, amount, date_column) -%}
    cast({{ dbt.dateadd(datepart, amount, date_column) }} as date)
{%- endmacro %}


{#-
  The six levels of every rollup as grouping sets, each also grouped by the period columns:
  entity+event type, entity, entity type+event type, entity type, event type, grand total.
-#}
{% macro rollup_grouping_sets(period_columns) -%}
    {%- set p = period_columns | join(', ') -%}
    grouping sets (
        ({{ p }}, entity_type, entity_id, event_type),
        ({{ p }}, entity_type, entity_id),
        ({{ p }}, entity_type, event_type),
        ({{ p }}, entity_type),
        ({{ p }}, event_type),
        ({{ p }})
    )
{%- endmacro %}


{#- A dimension column of a grouping-set query, with '*' for "all" where it was rolled up. -#}
{% macro rollup_dimension(column) -%}
    case when grouping({{ column }}) = 1 then '*' else {{ column }} end
{%- endmacro %}


{#- The three measures every rollup carries. -#}
{% macro rollup_measures() -%}
    cast(count(*) as bigint) as event_count,
    cast(count(distinct actor_id) as bigint) as unique_actors,
    cast(coalesce(sum(revenue_cents), 0) as bigint) as revenue_cents
{%- endmacro %}


{#-
  numerator / denominator rounded half away from zero to `scale` decimals, computed exactly
  with integer arithmetic (DuckDB divides decimals in floating point, which would misround
  ties such as 2.675). NULL when either side is NULL or the denominator is 0.
-#}
{% macro rounded_ratio(numerator, denominator, scale) -%}
    {%- set factor = 10 ** scale -%}
    case
        when ({{ denominator }}) is null or ({{ denominator }}) = 0 or ({{ numerator }}) is null then null
        else cast(
            (case when (({{ numerator }}) < 0) = (({{ denominator }}) < 0) then 1 else -1 end)
            * {{ integer_division(
                '2 * abs(cast(' ~ numerator ~ ' as numeric(38, 0))) * ' ~ factor ~ ' + abs(' ~ denominator ~ ')',
                '2 * abs(cast(' ~ denominator ~ ' as numeric(38, 0)))') }}
            as numeric(38, 0)) * cast('{{ '%.*f' % (scale, 1 / factor) }}' as numeric(38, {{ scale }}))
    end
{%- endmacro %}


{#- Integer division of non-negative whole numbers, truncating: exact on every warehouse. -#}
{% macro integer_division(numerator, denominator) -%}
    {{ return(adapter.dispatch('integer_division', 'metrics_aggregation')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__integer_division(numerator, denominator) -%}
    div({{ numerator }}, {{ denominator }})
{%- endmacro %}

{% macro duckdb__integer_division(numerator, denominator) -%}
    (cast({{ numerator }} as hugeint) // cast({{ denominator }} as hugeint))
{%- endmacro %}


{#- round(100 * (cur - prev) / prev, 2); NULL where prev is NULL or 0. -#}
{% macro growth_pct(current, previous) -%}
    cast({{ rounded_ratio('100 * (' ~ current ~ ' - ' ~ previous ~ ')', previous, 2) }} as numeric(20, 2))
{%- endmacro %}


{#- A measure spread evenly over a number of days (rounded to 6 decimals), for the averages. -#}
{% macro daily_average(measure, days) -%}
    cast({{ rounded_ratio(measure, days, 6) }} as numeric(24, 6))
{%- endmacro %}


{#- Number of days of the month starting on a date column (28 to 31). -#}
{% macro days_in_month(month_start_column) -%}
    cast({{ dbt.datediff(month_start_column, dbt.dateadd('month', 1, month_start_column), 'day') }} as integer)
{%- endmacro %}


{#-
  The PostgreSQL indexes of a rollup (none elsewhere): its period, for the window a run
  replaces, and a level's rows over a range of periods (entity type, entity id, period), so a
  custom metric answered from the rollups reads only the rows of its level.
-#}
{% macro metrics_rollup_indexes(period_column) -%}
    {%- if target.type != 'postgres' -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return([
        {'columns': [period_column]},
        {'columns': ['entity_type', 'entity_id', period_column]},
    ]) }}
{%- endmacro %}
