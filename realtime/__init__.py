"""Live metrics in Redis: counters, gauges, histograms and rates."""

from realtime.async_metrics import AsyncRealtimeMetrics
from realtime.metrics import RealtimeMetrics

__all__ = ["AsyncRealtimeMetrics", "RealtimeMetrics"]
