"""Live metrics in Redis: counters, gauges, histograms, rates, unique counts and top-k."""

from realtime.metrics import AsyncRealtimeMetrics, RealtimeMetrics

__all__ = ["AsyncRealtimeMetrics", "RealtimeMetrics"]
