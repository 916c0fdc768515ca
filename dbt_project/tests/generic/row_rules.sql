{#-
  Every row rule of a table in one scan: one result row per rule that some rows break, naming
  the rule, the column and how many rows break it. Rules: `not_null` (the column has a value)
  and `not_reserved_star` ('*' means "all" in every rollup, so the column must never hold it).
  `counted` is the one scan; each rule is a select of its count from it (PostgreSQL and DuckDB
  compute a CTE used more than once only once, Spark merges and reuses the scalar subqueries).
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

broken as (

    {%- for rule in rules %}
    select
        '{{ rule.rule }}' as rule_name,
        '{{ rule.column }}' as column_name,
        broken_{{ loop.index }} as failing_rows,
        '{{ rule.reason }}' as reason
    from counted
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}

)

select * from broken
where failing_rows > 0
{% endtest %}
