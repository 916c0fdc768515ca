"""Serving dashboards: the Redis cache, its keys and tags, and the reader of the SQL marts."""

from serving.cache import MetricsCache
from serving.reader import MetricsReader
from serving.rows import LatestPeriod, MetricsRow
from serving.warming import CacheEntry

__all__ = ["CacheEntry", "LatestPeriod", "MetricsCache", "MetricsReader", "MetricsRow"]
