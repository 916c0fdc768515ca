{#- The grain of a rollup: no two rows share these columns. -#}
{% test unique_combination(model, combination) %}
    select {{ combination | join(', ') }}, count(*) as rows_at_this_grain
    from {{ model }}
    group by {{ combination | join(', ') }}
    having count(*) > 1
{% endtest %}
