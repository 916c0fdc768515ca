{#-
  Data tests scoped to the run window. A test configured with
  `where: "__window_day__(event_date)"` checks only the rows of the window's days (every row
  on a full build), so incremental runs do not rescan the whole history to test it.
  `__window_timestamp__(col)` does the same for a timestamptz column, and `__window_week__(col)`
  / `__window_month__(col)` for the periods a weekly / monthly run rewrites.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set match = modules.re.match('^__window_(day|timestamp|week|month)__\\((\\w+)\\)$', where | trim) -%}
        {%- if match -%}
            {%- set window = metrics_window() -%}
            {%- if window is none -%}
                {%- set where = '1 = 1' -%}
            {%- elif match.group(1) == 'day' -%}
                {%- set where = match.group(2) ~ " >= " ~ metrics_date_literal(window.start) ~ " and " ~ match.group(2) ~ " < " ~ metrics_date_literal(window.end) -%}
            {%- elif match.group(1) in ('week', 'month') -%}
                {%- set periods = metrics_periods(match.group(1)) -%}
                {%- set where = match.group(2) ~ " >= " ~ metrics_date_literal(periods.first) ~ " and " ~ match.group(2) ~ " <= " ~ metrics_date_literal(periods.next) -%}
            {%- else -%}
                {%- set where = match.group(2) ~ " >= " ~ metrics_timestamp_literal(window.start) ~ " and " ~ match.group(2) ~ " < " ~ metrics_timestamp_literal(window.end) -%}
            {%- endif -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
