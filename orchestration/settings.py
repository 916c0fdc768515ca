"""The orchestration's own settings, read from the environment once per `Definitions` build.

Warehouse settings (target, schemas, week start) come from `warehouse.WarehouseConfig`; this adds
what only Dagster needs: the first partition, and the retry delay of the rollup assets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from warehouse import WarehouseConfig

DEFAULT_PARTITIONS_START = "2024-01-01"
DEFAULT_RETRY_DELAY_SECONDS = 30.0
DEFAULT_MAX_RETRIES = 3
MAX_RETRY_DELAY_SECONDS = 86_400.0
MAX_RETRIES = 100
# Dagster's time partitions count from the Unix epoch; a start in the future has no partition.
EARLIEST_PARTITIONS_START = date(1970, 1, 1)


def _env_date(name: str, default: str) -> date:
    text = os.environ.get(name, "").strip() or default
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a date written YYYY-MM-DD, not {text!r}") from None
    today = datetime.now(UTC).date()
    if not EARLIEST_PARTITIONS_START <= value <= today:
        raise ValueError(
            f"{name}={text} must be a day from {EARLIEST_PARTITIONS_START} to today ({today}): "
            "partitions are the periods since then that have ended"
        )
    return value


def _env_float(name: str, default: float, most: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {text!r}") from None
    if not 0 <= value <= most:  # also refuses nan
        raise ValueError(f"{name} must be a number of seconds from 0 to {most:g}, not {text!r}")
    return value


def _env_int(name: str, default: int, most: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if not 0 <= value <= most:
        raise ValueError(f"{name} must be a whole number from 0 to {most}, not {text!r}")
    return value


@dataclass(frozen=True)
class OrchestrationSettings:
    """Everything the Dagster definitions depend on; `from_env()` is what production uses.

    partitions_start: first day of every partition set (METRICS_PARTITIONS_START), UTC.
    week_start_index: 0 = Monday ... 6 = Sunday, from METRICS_WEEK_START (shared with the SQL).
    retry_delay_seconds / max_retries: the rollups' retry policy (METRICS_RETRY_DELAY_SECONDS,
    METRICS_MAX_RETRIES); the delay doubles on every further attempt.
    """

    partitions_start: date = field(
        default_factory=lambda: _env_date("METRICS_PARTITIONS_START", DEFAULT_PARTITIONS_START)
    )
    week_start_index: int = field(default_factory=lambda: WarehouseConfig().week_start_index)
    retry_delay_seconds: float = field(
        default_factory=lambda: _env_float(
            "METRICS_RETRY_DELAY_SECONDS", DEFAULT_RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS
        )
    )
    max_retries: int = field(
        default_factory=lambda: _env_int("METRICS_MAX_RETRIES", DEFAULT_MAX_RETRIES, MAX_RETRIES)
    )

    def __post_init__(self) -> None:
        if not 0 <= self.week_start_index <= 6:
            raise ValueError(f"week_start_index must be 0..6, got {self.week_start_index}")

    @classmethod
    def from_env(cls) -> OrchestrationSettings:
        return cls()
