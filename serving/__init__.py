"""Serving dashboards: the Redis cache, its keys and tags, and the reader of the SQL marts."""

from serving.cache import MetricsCache
from serving.reader import MetricsReader

__all__ = ["MetricsCache", "MetricsReader"]
