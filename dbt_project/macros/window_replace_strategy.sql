{#-
  Incremental strategy `window_replace`: the window is authoritative. Delete the target's rows
  that match the model's incremental_predicates (the periods the run window recomputes, see
  metrics_period_range), then insert the new batch. Unlike delete+insert, groups that vanished
  from the source are removed too. Both statements run inside the materialization's
  transaction, so a failure leaves the table as it was.
-#}
{% macro get_incremental_window_replace_sql(arg_dict) -%}
    {%- set predicates = arg_dict['incremental_predicates'] -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error(
            "window_replace needs incremental_predicates naming the rows the window owns") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ predicates | join(' and ') }};

    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }}
    from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
