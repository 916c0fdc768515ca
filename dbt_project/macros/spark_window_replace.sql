{#-
  window_replace on Spark. dbt-spark's incremental materialization knows only its own strategies
  (append, insert_overwrite, merge, microbatch), so these two of its macros are extended here to
  accept window_replace. Parquet tables cannot delete rows, so each model is partitioned by its
  period column (see metrics_partition_by) and the window's rows are replaced a partition at a
  time: the stored partitions the incremental_predicates select are dropped, then the batch is
  inserted (two statements: dbt-spark's session runs one per call). A period whose rows all
  vanished is dropped and not written back, as a delete would. Spark has no transactions: a failure between the two statements leaves the window's periods
  empty until the run is repeated.
-#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- if raw_strategy == 'window_replace' -%}
        {%- if not config.get('partition_by') -%}
            {{ exceptions.raise_compiler_error(
                "window_replace on Spark needs partition_by: the window's periods are replaced "
                ~ "as partitions") }}
        {%- endif -%}
        {{ return(raw_strategy) }}
    {%- endif -%}
    {{ return(dbt_spark.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{% endmacro %}


{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy == 'window_replace' -%}
        {{ spark_window_replace_sql(source, target, incremental_predicates) }}
    {%- else -%}
        {{ dbt_spark.dbt_spark_get_incremental_sql(
            strategy, source, target, existing, unique_key, incremental_predicates) }}
    {%- endif -%}
{% endmacro %}


{% macro spark_window_replace_sql(source, target, predicates) -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error(
            "window_replace needs incremental_predicates naming the rows the window owns") }}
    {%- endif -%}
    {%- set partition_column = config.get('partition_by') -%}
    {%- set partition_column = partition_column if partition_column is string else partition_column[0] -%}
    {%- set stored = run_query(
        'select distinct ' ~ partition_column ~ ' from ' ~ target
        ~ ' where ' ~ (predicates | join(' and '))) -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- if stored.rows | length > 0 -%}
        {#- dbt-spark runs one statement per call: the drop runs here, the insert is returned. -#}
        {%- set specs = [] -%}
        {%- for row in stored.rows -%}
            {%- do specs.append('partition (' ~ partition_column ~ " = date '" ~ row[0].isoformat() ~ "')") -%}
        {%- endfor -%}
        {%- do run_query('alter table ' ~ target ~ ' drop if exists ' ~ (specs | join(', '))) -%}
    {%- endif %}

    insert into table {{ target }}
    select {{ columns }}
    from {{ source }}
{%- endmacro %}


{#- The partition column of a model on Spark (none elsewhere): its period column. -#}
{% macro metrics_partition_by(column) -%}
    {{ return([column] if target.type == 'spark' else none) }}
{%- endmacro %}
