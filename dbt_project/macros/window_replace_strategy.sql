{#-
  Incremental strategy `window_replace`: the window is authoritative. Delete every row of the
  target inside the window, then insert the new batch. Unlike delete+insert, groups that
  vanished from the source are removed too. Both statements run inside the materialization's
  transaction, so a failure leaves the table as it was.
  The rows the window owns are worked out here, while executing, from the model's
  `meta.window_replace` ({column, grain, refresh_next}; see metrics_replace_predicates): not as
  incremental_predicates in its config, which dbt fixes when it parses the project, before the
  run's window is known (the window may come from the environment; see metrics_window).
-#}
{% macro get_incremental_window_replace_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set spec = (config.get('meta') or {}).get('window_replace') -%}
    {%- if spec -%}
        {%- set predicates = metrics_replace_predicates(
            spec['column'], spec['grain'], refresh_next=spec.get('refresh_next', false)) -%}
    {%- else -%}
        {%- set predicates = arg_dict['incremental_predicates'] -%}
    {%- endif -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error(
            "window_replace needs meta.window_replace {column, grain} (or incremental_predicates) naming the rows the window owns") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ predicates | join(' and ') }};

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ batch }}
{%- endmacro %}
