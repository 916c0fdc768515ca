{#-
  A schema name reaches the SQL quoted but not escaped, so it must be a plain identifier:
  1-63 ASCII letters, digits and _, not starting with a digit (as the Python configuration).
  Anything else stops the run with an error naming the setting.
-#}
{% macro plain_identifier(name, setting) -%}
    {%- set text = name | string -%}
    {%- if not modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_]{0,62}', text) -%}
        {{ exceptions.raise_compiler_error(
            setting ~ '=' ~ (text | tojson) ~ ' is not a plain SQL identifier: use 1-63 ASCII '
            ~ 'letters, digits and _, not starting with a digit'
        ) }}
    {%- endif -%}
    {{- text -}}
{%- endmacro %}

{#- Run before any node (on-run-start): both schema settings are checked before anything runs. -#}
{% macro check_schema_settings() -%}
    {%- do plain_identifier(env_var('METRICS_SOURCE_SCHEMA', 'raw'), 'METRICS_SOURCE_SCHEMA') -%}
    {%- do plain_identifier(target.schema, 'METRICS_SCHEMA') -%}
{%- endmacro %}
