"""Connections to the configured warehouse (DuckDB embedded, or PostgreSQL) from the environment."""

from warehouse.config import WarehouseConfig
from warehouse.connection import Warehouse, connect

__all__ = ["Warehouse", "WarehouseConfig", "connect"]
