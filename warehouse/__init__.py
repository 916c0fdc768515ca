"""Connections to the configured warehouse (DuckDB embedded, or PostgreSQL), from the env."""

from warehouse.config import WarehouseConfig, WarehouseConfigError
from warehouse.connection import (
    Warehouse,
    WarehouseBusyError,
    WarehouseUnavailableError,
    connect,
)

__all__ = [
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseConfig",
    "WarehouseConfigError",
    "WarehouseUnavailableError",
    "connect",
]
