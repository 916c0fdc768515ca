"""Dagster definitions for the metrics rollups: partitions, dbt assets, schedules, sensors."""
