"""Whether ``REDIS_URL`` names a node of a Redis Cluster (``METRICS_REDIS_CLUSTER``), read the
same way by the HTTP server and by Dagster's sensors and jobs."""

from __future__ import annotations

import os

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def redis_cluster_from_env() -> bool:
    """``METRICS_REDIS_CLUSTER`` as a flag (unset: a single Redis); anything unknown is refused."""
    text = os.environ.get("METRICS_REDIS_CLUSTER", "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"METRICS_REDIS_CLUSTER must be 1 or 0 (true/false), not {text!r}")
