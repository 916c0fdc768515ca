{#-
  The run window: `--vars '{min_date: "2025-03-01", max_date: "2025-03-08"}'` is the half-open
  range [min_date, max_date). Without both vars, the whole history is built. Dagster passes each
  run's partition window the same way. Period macros turn it into the periods each grain
  recomputes; the models use them in their filters and incremental_predicates.
-#}

{% macro metrics_window() -%}
    {%- set min_date = var('min_date', none) -%}
    {%- set max_date = var('max_date', none) -%}
    {%- if min_date is none and max_date is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if min_date is none or max_date is none -%}
        {{ exceptions.raise_compiler_error(
            "Pass both min_date and max_date (a half-open window [min_date, max_date)) or neither; got min_date="
            ~ min_date ~ ", max_date=" ~ max_date) }}
    {%- endif -%}
    {%- if flags.FULL_REFRESH -%}
        {{ exceptions.raise_compiler_error(
            "--full-refresh rebuilds whole tables from the source; it cannot be combined with a "
            ~ "window (min_date/max_date), which would keep only the window's rows") }}
    {%- endif -%}
    {%- set start = metrics_parse_date(min_date, 'min_date') -%}
    {%- set end = metrics_parse_date(max_date, 'max_date') -%}
    {%- if start >= end -%}
        {{ exceptions.raise_compiler_error(
            "min_date must be before max_date (the window is half-open): got ["
            ~ start ~ ", " ~ end ~ ")") }}
    {%- endif -%}
    {{ return({'start': start, 'end': end}) }}
{%- endmacro %}


{% macro metrics_parse_date(value, name) -%}
    {%- set text = (value | string) | trim -%}
    {%- set parsed = none -%}
    {%- if modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
        {%- set parts = text.split('-') -%}
        {%- set parsed = modules.datetime.date(parts[0] | int, parts[1] | int, parts[2] | int) -%}
    {%- endif -%}
    {%- if parsed is none -%}
        {{ exceptions.raise_compiler_error(name ~ " must be a date written YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return(parsed) }}
{%- endmacro %}


{#- 0 for Monday ... 6 for Sunday, from METRICS_WEEK_START (Python's weekday()). -#}
{% macro metrics_week_start_index() -%}
    {%- set days = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] -%}
    {%- set name = env_var('METRICS_WEEK_START', 'monday') | trim | lower -%}
    {%- if name not in days -%}
        {{ exceptions.raise_compiler_error(
            "METRICS_WEEK_START must be a weekday name (monday ... sunday), got '" ~ name ~ "'") }}
    {%- endif -%}
    {{ return(days.index(name)) }}
{%- endmacro %}


{% macro metrics_floor_week(day) -%}
    {%- set offset = (day.weekday() - metrics_week_start_index() + 7) % 7 -%}
    {{ return(day - modules.datetime.timedelta(days=offset)) }}
{%- endmacro %}


{% macro metrics_add_months(day, months) -%}
    {%- set index = day.year * 12 + (day.month - 1) + months -%}
    {{ return(modules.datetime.date(index // 12, index % 12 + 1, 1)) }}
{%- endmacro %}


{#-
  The periods a grain recomputes for the window: every period that overlaps it (first..last),
  plus the neighbours whose stored rows take part in growth: the period before (read only, for
  prev_* of the first period) and the period after (its prev_* and growth are refreshed).
  Returns none for a full build. Dates are returned as datetime.date.
-#}
{% macro metrics_periods(grain) -%}
    {%- set window = metrics_window() -%}
    {%- if window is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set last_day = window.end - modules.datetime.timedelta(days=1) -%}
    {%- if grain == 'day' -%}
        {{ return({'first': window.start, 'last': last_day,
                   'events_start': window.start, 'events_end': window.end,
                   'previous': none, 'next': none}) }}
    {%- elif grain == 'week' -%}
        {%- set first = metrics_floor_week(window.start) -%}
        {%- set last = metrics_floor_week(last_day) -%}
        {%- set week = modules.datetime.timedelta(days=7) -%}
        {{ return({'first': first, 'last': last,
                   'events_start': first, 'events_end': last + week,
                   'previous': first - week, 'next': last + week}) }}
    {%- elif grain == 'month' -%}
        {%- set first = window.start.replace(day=1) -%}
        {%- set last = last_day.replace(day=1) -%}
        {{ return({'first': first, 'last': last,
                   'events_start': first, 'events_end': metrics_add_months(last, 1),
                   'previous': metrics_add_months(first, -1), 'next': metrics_add_months(last, 1)}) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("unknown grain '" ~ grain ~ "'") }}
    {%- endif -%}
{%- endmacro %}


{% macro metrics_date_literal(day) -%}
    cast('{{ day.isoformat() }}' as date)
{%- endmacro %}


{#- UTC midnight of a day, as a timestamptz literal (day boundaries are UTC). -#}
{% macro metrics_timestamp_literal(day) -%}
    cast('{{ day.isoformat() }} 00:00:00+00:00' as {{ metrics_timestamptz() }})
{%- endmacro %}


{#- Predicate on a date column for the window's events, or true when building everything. -#}
{% macro metrics_events_filter(column, grain) -%}
    {%- set periods = metrics_periods(grain) -%}
    {%- if periods is none -%}
        1 = 1
    {%- else -%}
        {{ column }} >= {{ metrics_date_literal(periods.events_start) }}
        and {{ column }} < {{ metrics_date_literal(periods.events_end) }}
    {%- endif -%}
{%- endmacro %}


{#-
  Predicate on a period column for the periods the window recomputes (first..last), optionally
  widened by the period before (read for prev_*) and the period after (whose prev_* and growth
  are refreshed); `1 = 1` when building everything. Used in filters and incremental_predicates.
-#}
{% macro metrics_period_range(column, grain, with_previous=false, with_next=false) -%}
    {%- set periods = metrics_periods(grain) -%}
    {%- if periods is none -%}
        1 = 1
    {%- else -%}
        {%- set lower = periods.previous if with_previous and periods.previous else periods.first -%}
        {%- set upper = periods.next if with_next and periods.next else periods.last -%}
        {{ column }} >= {{ metrics_date_literal(lower) }}
        and {{ column }} <= {{ metrics_date_literal(upper) }}
    {%- endif -%}
{%- endmacro %}
