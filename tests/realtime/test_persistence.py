"""Backup of counters and gauges to the warehouse, restore after a Redis restart."""

from __future__ import annotations

import redis

from realtime.metrics import RealtimeMetrics
from realtime.persistence import TABLE, backup_to_warehouse, restore_from_warehouse
from tests.realtime.conftest import WITH_SPARK
from tests.realtime.support import RedisServer
from warehouse import Warehouse

COUNTERS = {
    ("page_views", None): 41,
    ("page_views", (("page", "home"),)): 7,
    ("revenue", (("currency", "EUR"), ("plan", "pro"))): 1234.5,
    ("big", None): 2**40 + 3,
}
GAUGES = {("queue_depth", (("queue", "mail"),)): (12, "jobs"), ("temperature", None): (21.5, None)}


pytestmark = WITH_SPARK


def _write(metrics: RealtimeMetrics) -> None:
    for (name, labels), value in COUNTERS.items():
        metrics.increment_counter(name, value, dict(labels) if labels else None)
    for (name, labels), (value, unit) in GAUGES.items():
        metrics.set_gauge(name, value, dict(labels) if labels else None, unit=unit)


def _hour_buckets(metrics: RealtimeMetrics, raw: redis.Redis) -> dict[bytes, bytes]:
    key = metrics.ops.key(metrics.ops.series("counter", "page_views", None)[0]) + ":h"
    return raw.hgetall(key)  # type: ignore[return-value]


def test_restore_after_a_redis_restart(private_redis: RedisServer, warehouse: Warehouse) -> None:
    metrics = RealtimeMetrics.from_url(private_redis.url, prefix="app:", fail_open=False)
    raw = redis.Redis.from_url(private_redis.url)
    _write(metrics)
    hours_before = _hour_buckets(metrics, raw)
    counts = backup_to_warehouse(metrics, warehouse)
    assert counts == {"counter": 4, "counter_hour": 4, "gauge": 2}
    stored = warehouse.query(f"select count(*) from {warehouse.schema}.{TABLE}")
    assert stored == [(10,)]
    metrics.increment_counter("page_views", 1000)  # after the backup: lost by the restart

    private_redis.restart()  # --save "": everything is gone
    assert metrics.get_counter("page_views") == 0
    assert metrics.get_gauge("temperature") is None

    assert restore_from_warehouse(metrics, warehouse) == 6
    for (name, labels), value in COUNTERS.items():
        assert metrics.get_counter(name, dict(labels) if labels else None) == value
    for (name, labels), (value, _) in GAUGES.items():
        assert metrics.get_gauge(name, dict(labels) if labels else None) == value
    assert _hour_buckets(metrics, raw) == hours_before
    assert "unit: jobs" in metrics.export_prometheus()  # units and the registry came back

    # Restoring again changes nothing: Redis still holds everything.
    assert restore_from_warehouse(metrics, warehouse) == 0
    assert metrics.get_counter("page_views") == 41
    raw.close()
    metrics.close()


def test_restore_keeps_increments_made_after_the_restart(
    private_redis: RedisServer, warehouse: Warehouse
) -> None:
    metrics = RealtimeMetrics.from_url(private_redis.url, prefix="app:", fail_open=False)
    _write(metrics)
    backup_to_warehouse(metrics, warehouse)
    private_redis.restart()
    metrics.increment_counter("page_views", 5)  # traffic before the restore ran
    metrics.set_gauge("temperature", 30.0)  # newer than the backup: kept
    restore_from_warehouse(metrics, warehouse)
    assert metrics.get_counter("page_views") == 41 + 5
    assert metrics.get_gauge("temperature") == 30.0
    assert metrics.get_gauge("queue_depth", {"queue": "mail"}) == 12
    metrics.close()


def test_backup_replaces_the_previous_snapshot_of_its_prefix(
    rt: RealtimeMetrics, warehouse: Warehouse
) -> None:
    rt.increment_counter("hits", 3)
    backup_to_warehouse(rt, warehouse)
    rt.increment_counter("hits", 2)
    backup_to_warehouse(rt, warehouse)
    rows = warehouse.query(
        f"select value from {warehouse.schema}.{TABLE} "
        f"where metric_kind = 'counter' and key_prefix = {warehouse.param('p')}",
        {"p": rt.settings.prefix},
    )
    assert rows == [(5.0,)]


def test_backup_opens_the_warehouse_from_the_environment(
    rt: RealtimeMetrics, warehouse: Warehouse
) -> None:
    rt.set_gauge("g", 1)
    assert backup_to_warehouse(rt) == {"gauge": 1}


def test_a_backup_after_a_restart_restores_first(
    private_redis: RedisServer, warehouse: Warehouse
) -> None:
    """The scheduled backup runs after a Redis restart and before anyone restored: the
    pre-outage counts must survive it (and the next restore must not add them twice)."""
    metrics = RealtimeMetrics.from_url(private_redis.url, prefix="app:", fail_open=False)
    _write(metrics)
    assert "restored" not in backup_to_warehouse(metrics, warehouse)
    private_redis.restart()  # --save "": everything is gone
    metrics.increment_counter("page_views", 5)  # traffic before the scheduled backup

    counts = backup_to_warehouse(metrics, warehouse)
    restore_from_warehouse(metrics, warehouse)  # what an operator runs afterwards

    assert metrics.get_counter("page_views") == 41 + 5
    assert counts.get("restored") == 6  # 4 counters and 2 gauges were gone
    stored = warehouse.query(
        f"select value from {warehouse.schema}.{TABLE} where metric_kind = 'counter'"
        f" and name = 'page_views' and labels = ''"
    )
    assert stored == [(46.0,)]
    for (name, labels), value in COUNTERS.items():
        expected = value + (5 if (name, labels) == ("page_views", None) else 0)
        assert metrics.get_counter(name, dict(labels) if labels else None) == expected
    assert restore_from_warehouse(metrics, warehouse) == 0
    assert "restored" not in backup_to_warehouse(metrics, warehouse)  # same Redis: no restore
    assert metrics.get_counter("page_views") == 46
    metrics.close()
