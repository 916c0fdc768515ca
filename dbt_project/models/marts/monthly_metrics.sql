{#- Monthly rollup at six levels with active days, daily averages and month-over-month growth. -#}
{{ config(
    incremental_strategy='window_replace',
    meta={'window_replace': {'column': 'month_start', 'grain': 'month', 'refresh_next': true}},
    indexes=([{'columns': ['month_start']}] if target.type == 'postgres' else []),
) }}

{{ rollup_with_growth('month_start', 'month') }}
