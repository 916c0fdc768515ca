"""Dagster orchestration of the metrics rollups.

One module per concern: `settings` (env), `partitions` (daily/weekly/monthly, UTC),
`manifest` (dbt parse on first load), `translator` (dbt -> assets, partition mappings),
`dbt_assets` (one `@dbt_assets` per grain, single-run backfills, pool, retries), `audit_log`,
`dbt_results` and `metadata` (what a run did), `jobs`, `schedules`, `sensors` and `late_data`
(late-data re-runs, catch-up of weeks and months), `realtime_ops` and `custom_metrics_assets`
(hooks into the other packages), `resources` (how dbt is started),
`instance`, `runner` (in-process range runs), `cli` (the `metrics` command) and `demo`.
`definitions.defs` is the code location.
"""
