{#-
  Incremental strategy `window_replace`: the window is authoritative. Delete every row of the
  target inside the window (the model's incremental_predicates), then insert the new batch.
  Unlike delete+insert, groups that vanished from the source are removed too. Both statements
  run inside the materialization's transaction, so a failure leaves the table as it was.
-#}
{% macro get_incremental_window_replace_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set predicates = arg_dict['incremental_predicates'] -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error(
            "window_replace needs incremental_predicates naming the rows the window owns") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ predicates | join(' and ') }};

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ batch }}
{%- endmacro %}
