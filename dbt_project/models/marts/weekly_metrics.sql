{#- Weekly rollup at six levels with active days, daily averages and week-over-week growth. -#}
{{ config(
    incremental_strategy='window_replace',
    meta={'window_replace': {'column': 'week_start', 'grain': 'week', 'refresh_next': true}},
    indexes=([{'columns': ['week_start']}] if target.type == 'postgres' else []),
) }}

{{ rollup_with_growth('week_start', 'week') }}
