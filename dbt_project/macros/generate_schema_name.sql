{#- Output schema is exactly METRICS_SCHEMA (the target's schema): no dbt prefixing. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{- plain_identifier((custom_schema_name or target.schema) | trim, 'METRICS_SCHEMA') -}}
{%- endmacro %}
