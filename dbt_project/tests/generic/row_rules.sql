{#-
  Every row rule of a table in one scan: one result row per rule that some rows break, naming
  the rule, the column and how many rows break it. Rules: `not_null` (the column has a value)
  and `not_reserved_star` ('*' means "all" in every rollup, so the column must never hold it).
-#}
{% test row_rules(model, not_null=[], not_reserved_star=[]) %}
{%- set rules = [] -%}
{%- for column in not_null -%}
    {%- do rules.append({
        'rule': 'not_null', 'column': column, 'broken_when': column ~ ' is null',
        'reason': column ~ ' must not be null'}) -%}
{%- endfor -%}
{%- for column in not_reserved_star -%}
    {%- do rules.append({
        'rule': 'not_reserved_star', 'column': column, 'broken_when': column ~ " = '*'",
        'reason': 'the value * is reserved for "all" in the rollups and must not appear in '
            ~ column}) -%}
{%- endfor -%}
{%- if not rules -%}
    {{ exceptions.raise_compiler_error("row_rules needs at least one column to check") }}
{%- endif %}

with counted as (

    select
        {%- for rule in rules %}
        count(case when {{ rule.broken_when }} then 1 end) as broken_{{ loop.index }}
        {{- "," if not loop.last }}
        {%- endfor %}
    from {{ model }}

),

rules as (

    {%- for rule in rules %}
    select
        {{ loop.index }} as rule_number,
        '{{ rule.rule }}' as rule_name,
        '{{ rule.column }}' as column_name,
        '{{ rule.reason }}' as reason
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

broken as (

    select
        rules.rule_name,
        rules.column_name,
        case rules.rule_number
            {%- for rule in rules %}
            when {{ loop.index }} then counted.broken_{{ loop.index }}
            {%- endfor %}
        end as failing_rows,
        rules.reason
    from rules
    cross join counted

)

select * from broken
where failing_rows > 0
{% endtest %}
