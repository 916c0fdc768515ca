"""Live metrics in Redis (counters, gauges, histograms, rates) and the dashboard cache."""

from realtime.cache import MetricsCache
from realtime.metrics import AsyncRealtimeMetrics, RealtimeMetrics

__all__ = ["AsyncRealtimeMetrics", "MetricsCache", "RealtimeMetrics"]
