"""Live metrics in Redis: counters, gauges, histograms, rates, unique counts and top-k."""

from realtime.async_metrics import AsyncRealtimeMetrics
from realtime.metrics import RealtimeMetrics

__all__ = ["AsyncRealtimeMetrics", "RealtimeMetrics"]
