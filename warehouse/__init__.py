"""Connections to the configured warehouse (DuckDB embedded, or PostgreSQL), from the env."""

from warehouse.config import WarehouseConfig
from warehouse.connection import Warehouse, WarehouseBusyError, connect

__all__ = ["Warehouse", "WarehouseBusyError", "WarehouseConfig", "connect"]
