{#- '*' means "all" in every rollup, so the source must never use it as a value. -#}
{% test not_reserved_star(model, column_name) %}
    select
        {{ column_name }} as offending_value,
        count(*) as offending_rows,
        'the value * is reserved for "all" in the rollups and must not appear in {{ column_name }}' as reason
    from {{ model }}
    where {{ column_name }} = '*'
    group by {{ column_name }}
{% endtest %}
