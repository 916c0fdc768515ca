{#-
  Spark SQL spells some of the models' types differently: text and json are string, timestamptz
  is timestamp (Spark's timestamp is an instant, shown in the session time zone, UTC here).
  dbt's cast() goes through this on Spark, so the contracts' empty-schema check compares like
  with like; the models write their few timestamp casts with metrics_timestamptz().
-#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}


{% macro spark_type(type) -%}
    {%- set names = {'text': 'string', 'json': 'string', 'jsonb': 'string', 'timestamptz': 'timestamp'} -%}
    {{- return(names.get(type | trim | lower, type)) -}}
{%- endmacro %}


{#- The type of an instant: timestamptz, or Spark's timestamp. -#}
{% macro metrics_timestamptz() -%}
    {{- 'timestamp' if target.type == 'spark' else 'timestamptz' -}}
{%- endmacro %}


{#- The UTC calendar day of an instant (Spark's session time zone is UTC). -#}
{% macro utc_date_of(column) -%}
    {%- if target.type == 'spark' -%}
        cast({{ column }} as date)
    {%- else -%}
        cast({{ column }} at time zone 'UTC' as date)
    {%- endif -%}
{%- endmacro %}


{#- Sets the session time zone to UTC, in the warehouse's syntax (every model's pre-hook). -#}
{% macro set_utc_time_zone() -%}
    {{- "set time zone 'UTC'" if target.type == 'spark' else "set timezone = 'UTC'" -}}
{%- endmacro %}
