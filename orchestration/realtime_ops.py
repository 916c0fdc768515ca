"""Dagster side of the realtime package: cache invalidation after rollups, and the Redis
maintenance jobs (hourly reconciliation, daily registry cleanup, periodic backup, restore).

The functions called are `serving.invalidation.invalidate_for_materialization`,
`realtime.reconcile.reconcile`, `realtime.registry.cleanup` and
`realtime.persistence.backup_to_warehouse` / `restore_from_warehouse`; `realtime` is imported
inside the ops and the sensor, so loading the definitions never needs Redis.
"""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    Config,
    ConfigurableResource,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    JobDefinition,
    OpExecutionContext,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)
from pydantic import Field

from orchestration.dbt_assets import WAREHOUSE_POOL
from orchestration.partitions import Grain, contiguous_ranges
from orchestration.translator import ASSET_PREFIX

if TYPE_CHECKING:
    from realtime import RealtimeMetrics
    from serving import MetricsCache

ROLLUP_TABLES = {
    Grain.DAY: AssetKey([ASSET_PREFIX, "daily_metrics"]),
    Grain.WEEK: AssetKey([ASSET_PREFIX, "weekly_metrics"]),
    Grain.MONTH: AssetKey([ASSET_PREFIX, "monthly_metrics"]),
}
INVALIDATION_BATCH = 5000


def _default_redis_url() -> str:
    return os.environ.get("REDIS_URL", "").strip() or "redis://localhost:6379/0"


def _default_redis_cluster() -> bool:
    from realtime.environment import redis_cluster_from_env

    return redis_cluster_from_env()


class RealtimeResource(ConfigurableResource):  # type: ignore[type-arg]
    """Where the realtime metrics and the dashboard cache live (REDIS_URL by default)."""

    redis_url: str = Field(default_factory=_default_redis_url)
    # METRICS_REALTIME_PREFIX / METRICS_CACHE_NAMESPACE keep deployments (or test runs) that
    # share one Redis apart.
    metrics_prefix: str = Field(
        default_factory=lambda: os.environ.get("METRICS_REALTIME_PREFIX", "").strip() or "rt:"
    )
    cache_namespace: str = Field(
        default_factory=lambda: os.environ.get("METRICS_CACHE_NAMESPACE", "").strip() or "metrics"
    )
    # redis_url names a node of a Redis Cluster (METRICS_REDIS_CLUSTER=1).
    redis_cluster: bool = Field(default_factory=_default_redis_cluster)

    @contextmanager
    def metrics(self) -> Iterator["RealtimeMetrics"]:
        """A RealtimeMetrics client for the run, closed afterwards."""
        from realtime import RealtimeMetrics

        rt = RealtimeMetrics.from_url(
            self.redis_url, prefix=self.metrics_prefix, cluster=self.redis_cluster
        )
        try:
            yield rt
        finally:
            rt.close()

    @contextmanager
    def cache(self) -> Iterator["MetricsCache"]:
        """A MetricsCache client, closed afterwards."""
        from serving import MetricsCache

        cache = MetricsCache.from_url(
            self.redis_url, namespace=self.cache_namespace, cluster=self.redis_cluster
        )
        try:
            yield cache
        finally:
            cache.close()


# Cache invalidation -----------------------------------------------------------------------


def cache_invalidation_sensor() -> SensorDefinition:
    """After daily/weekly/monthly rollups materialize, bump the cache tags of those periods.

    One call per contiguous range of partitions per grain. A Redis error fails the tick
    without moving the cursor, so the next tick invalidates again (nothing stays stale).
    """

    @sensor(
        name="rollup_cache_invalidation_sensor",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Invalidates the dashboard cache for rollup periods that were rebuilt.",
    )
    def _sensor(context: SensorEvaluationContext, realtime: RealtimeResource) -> SkipReason | None:
        from serving.invalidation import invalidate_for_materialization

        cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        pending: dict[Grain, tuple[list[str], int]] = {}
        for grain, asset_key in ROLLUP_TABLES.items():
            records = context.instance.fetch_materializations(
                AssetRecordsFilter(
                    asset_key=asset_key, after_storage_id=cursor.get(grain.adjective)
                ),
                limit=INVALIDATION_BATCH,
                ascending=True,
            ).records
            if records:
                keys = [r.partition_key for r in records if r.partition_key]
                pending[grain] = (keys, records[-1].storage_id)
        if not pending:
            return SkipReason("no rollup was materialized since the last tick")
        with realtime.cache() as cache:
            for grain, (keys, newest) in pending.items():
                for first, last in contiguous_ranges(grain, keys):
                    tags = invalidate_for_materialization(cache, grain.adjective, first, last)
                    context.log.info(
                        f"{grain.adjective} {first}..{last}: bumped {len(tags)} tag(s)"
                    )
                cursor[grain.adjective] = newest
                context.update_cursor(json.dumps(cursor))  # per grain: done is done
        return None

    return _sensor


# Redis maintenance ------------------------------------------------------------------------


class CounterMappingConfig(Config):
    """A counter that mirrors events (see realtime.reconcile.CounterMapping)."""

    name: str
    filters: dict[str, list[str]]  # column -> accepted values
    labels: dict[str, str] | None = None


class ReconcileConfig(Config):
    """Which counters mirror which events, and how many complete hours to compare.

    No mapping is configured by default: set them in the job's run config (launchpad or the
    schedule) once the application names its event-mirroring counters.
    """

    hours: int = 24
    counters: list[CounterMappingConfig] = Field(default_factory=list)


@op(pool=WAREHOUSE_POOL, description="Compare mapped counters with the events, fix drift.")
def reconcile_realtime_counters(
    context: OpExecutionContext, config: ReconcileConfig, realtime: RealtimeResource
) -> None:
    from realtime.reconcile import CounterMapping, reconcile

    if not config.counters:
        context.log.info("no counter is mapped to events: nothing to reconcile")
        return
    mappings = [CounterMapping(c.name, c.filters, c.labels) for c in config.counters]
    with realtime.metrics() as rt:
        findings = reconcile(rt, None, mappings, hours=config.hours)
    corrected = [f for f in findings if f.corrected]
    context.log.info(
        f"compared {len(findings)} counter-hour(s); corrected {len(corrected)}"
        + "".join(f"\n  {f.name} {f.labels} {f.hour_start}: {f.drift:+}" for f in corrected[:20])
    )


@op(description="Forget registry entries of realtime series whose keys have expired.")
def cleanup_realtime_registry(context: OpExecutionContext, realtime: RealtimeResource) -> None:
    from realtime.registry import cleanup

    with realtime.metrics() as rt:
        removed = cleanup(rt)
    context.log.info(f"removed stale registry entries: {removed}")


@op(pool=WAREHOUSE_POOL, description="Snapshot realtime counters and gauges into the warehouse.")
def backup_realtime_metrics(context: OpExecutionContext, realtime: RealtimeResource) -> None:
    from realtime.persistence import backup_to_warehouse

    with realtime.metrics() as rt:
        counts = backup_to_warehouse(rt)
    context.log.info(f"backed up: {counts}")


@op(pool=WAREHOUSE_POOL, description="Put back counters and gauges Redis lost (after a restart).")
def restore_realtime_metrics(context: OpExecutionContext, realtime: RealtimeResource) -> None:
    from realtime.persistence import restore_from_warehouse

    with realtime.metrics() as rt:
        restored = restore_from_warehouse(rt)
    context.log.info(f"restored {restored} series")


@job(description="Hourly: correct event-mirroring counters against the warehouse.")
def realtime_reconcile_job() -> None:
    reconcile_realtime_counters()


@job(description="Daily: drop registry entries of expired realtime series.")
def realtime_cleanup_job() -> None:
    cleanup_realtime_registry()


@job(description="Periodic: back up realtime counters and gauges to the warehouse.")
def realtime_backup_job() -> None:
    backup_realtime_metrics()


@job(description="On demand: restore realtime counters and gauges after Redis lost them.")
def realtime_restore_job() -> None:
    restore_realtime_metrics()


REALTIME_SCHEDULES: Mapping[str, tuple[JobDefinition, str]] = {
    "realtime_reconcile_schedule": (realtime_reconcile_job, "5 * * * *"),  # after each hour
    "realtime_cleanup_schedule": (realtime_cleanup_job, "30 3 * * *"),
    "realtime_backup_schedule": (realtime_backup_job, "*/15 * * * *"),
}


def realtime_schedules() -> list[ScheduleDefinition]:
    """Hourly reconciliation (at :05), daily cleanup (03:30), backup every 15 minutes; UTC."""
    return [
        ScheduleDefinition(
            name=name,
            job=job_def,
            cron_schedule=cron,
            execution_timezone="UTC",
            default_status=DefaultScheduleStatus.RUNNING,
        )
        for name, (job_def, cron) in REALTIME_SCHEDULES.items()
    ]


def realtime_jobs() -> list[JobDefinition]:
    """The Redis maintenance jobs, restore included (run on demand)."""
    return [realtime_reconcile_job, realtime_cleanup_job, realtime_backup_job, realtime_restore_job]


def realtime_resources() -> dict[str, Any]:
    """The `realtime` resource, from REDIS_URL."""
    return {"realtime": RealtimeResource()}
