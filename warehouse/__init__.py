"""Connections to the configured warehouse (DuckDB embedded, PostgreSQL or Spark), from the env."""

from warehouse.config import WarehouseConfig, WarehouseConfigError
from warehouse.connection import (
    Warehouse,
    WarehouseBusyError,
    WarehouseUnavailableError,
    connect,
    open_warehouse,
)

__all__ = [
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseConfig",
    "WarehouseConfigError",
    "WarehouseUnavailableError",
    "connect",
    "open_warehouse",
]
