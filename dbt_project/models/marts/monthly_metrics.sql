{#- Monthly rollup at six levels with active days, daily averages and month-over-month growth. -#}
{{ config(
    incremental_strategy='window_replace',
    incremental_predicates=metrics_replace_predicates('month_start', 'month', refresh_next=true),
    indexes=([{'columns': ['month_start']}] if target.type == 'postgres' else []),
) }}

{{ rollup_with_growth('month_start', 'month') }}
