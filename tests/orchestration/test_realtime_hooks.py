"""The realtime hooks against real Redis: cache invalidation after rollup materializations, and
the reconciliation, backup, restore and cleanup jobs (warehouse: a DuckDB file)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    build_sensor_context,
    instance_for_test,
)

from orchestration.definitions import build_rollups
from orchestration.realtime_ops import (
    RealtimeResource,
    realtime_backup_job,
    realtime_cleanup_job,
    realtime_reconcile_job,
    realtime_restore_job,
)
from orchestration.settings import OrchestrationSettings
from tests.orchestration.conftest import warehouse_env
from warehouse import WarehouseConfig, connect

pytestmark = pytest.mark.redis


@pytest.fixture()
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture()
def realtime(
    redis_url: str, redis_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RealtimeResource:
    for key, value in warehouse_env("duckdb", tmp_path).items():
        monkeypatch.setenv(key, value)
    return RealtimeResource(
        redis_url=redis_url, metrics_prefix=redis_prefix, cache_namespace=redis_prefix + "cache"
    )


def test_rollup_materializations_invalidate_exactly_their_cache_periods(
    realtime: RealtimeResource, instance: DagsterInstance
) -> None:
    from serving.invalidation import period_tags

    sensor = next(
        s
        for s in build_rollups(OrchestrationSettings.from_env()).sensors
        if s.name == "rollup_cache_invalidation_sensor"
    )
    computed: list[str] = []

    def cached(key: str, grain: str, start: date, end: date) -> None:
        with realtime.cache() as cache:
            cache.get_or_compute(
                key, lambda: computed.append(key) or key, tags=period_tags(grain, start, end)
            )

    entries = {
        "week_0304": ("weekly", date(2024, 3, 4), date(2024, 3, 11)),
        "week_0219": ("weekly", date(2024, 2, 19), date(2024, 2, 26)),
        "days_0301_0308": ("daily", date(2024, 3, 1), date(2024, 3, 8)),
        "days_0310_0317": ("daily", date(2024, 3, 10), date(2024, 3, 17)),
    }
    for key, entry in entries.items():
        cached(key, *entry)
    assert len(computed) == 4

    context = build_sensor_context(instance=instance, resources={"realtime": realtime})
    assert sensor(context) is not None  # nothing materialized yet: a skip
    # Week 2024-02-26 rebuilt (so 2024-03-04's growth changed too), and day 2024-03-05.
    for key, partition in (("weekly_metrics", "2024-02-26"), ("daily_metrics", "2024-03-05")):
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=AssetKey(["metrics", key]), partition=partition)
        )
    sensor(context)
    computed.clear()
    for key, entry in entries.items():
        cached(key, *entry)
    assert sorted(computed) == ["days_0301_0308", "week_0304"]

    # The cursor moved: the next tick invalidates nothing more.
    computed.clear()
    sensor(
        build_sensor_context(
            instance=instance, resources={"realtime": realtime}, cursor=context.cursor
        )
    )
    for key, entry in entries.items():
        cached(key, *entry)
    assert computed == []


def _recent_events(hour_start: datetime) -> None:
    """A minimal stg_events: three purchases in one past hour, and a page view just now."""
    with connect(WarehouseConfig()) as wh:
        wh.execute(f"create schema if not exists {wh.schema}")
        wh.execute(
            f"create table {wh.schema}.stg_events (event_id text, occurred_at timestamptz,"
            " event_type text, actor_id text, entity_type text, entity_id text)"
        )
        rows = [
            {"id": f"p{i}", "at": hour_start + timedelta(minutes=10 * i), "type": "purchase"}
            for i in range(3)
        ] + [{"id": "now", "at": datetime.now(UTC), "type": "page_view"}]
        p = wh.param
        wh.executemany(
            f"insert into {wh.schema}.stg_events values ({p('id')}, {p('at')}, {p('type')},"
            " 'u', 'asset', 'a1')",
            rows,
        )


def test_reconcile_backup_restore_and_cleanup_jobs(realtime: RealtimeResource) -> None:
    resources = {"realtime": realtime}
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    _recent_events(hour)

    config = {
        "ops": {
            "reconcile_realtime_counters": {
                "config": {
                    "hours": 3,
                    "counters": [{"name": "purchases", "filters": {"event_type": ["purchase"]}}],
                }
            }
        }
    }
    assert realtime_reconcile_job.execute_in_process(run_config=config, resources=resources).success
    with realtime.metrics() as rt:
        assert rt.get_counter("purchases") == 3  # the drift was corrected in Redis

    assert realtime_backup_job.execute_in_process(resources=resources).success
    with connect(WarehouseConfig()) as wh:
        backed_up = wh.query(
            f"select value from {wh.schema}.realtime_metrics_cache "
            f"where metric_kind = 'counter' and name = 'purchases'"
        )
    assert [float(v) for (v,) in backed_up] == [3.0]

    with realtime.metrics() as rt:  # Redis loses the counter
        rt.client.delete(*rt.client.keys(f"*{realtime.metrics_prefix}*purchases*"))
        assert rt.get_counter("purchases") == 0
    assert realtime_restore_job.execute_in_process(resources=resources).success
    with realtime.metrics() as rt:
        assert rt.get_counter("purchases") == 3

    assert realtime_cleanup_job.execute_in_process(resources=resources).success


def test_reconcile_without_mappings_is_a_no_op(realtime: RealtimeResource) -> None:
    result = realtime_reconcile_job.execute_in_process(resources={"realtime": realtime})
    assert result.success
