"""The environment of the dbt processes Dagster starts: what dbt must see, and what keeps its
partial parsing valid from one run to the next.

dbt re-parses the whole project (about two seconds here, per invocation) whenever `--vars`, the
profile's environment variables or the target differ from the saved parse. So the rollup runs
hand dbt their window through `METRICS_WINDOW_MIN_DATE` / `METRICS_WINDOW_MAX_DATE`, which the
`metrics_window` macro reads only while executing (never while parsing), and every invocation
starts from the parse saved next to the manifest for the same target and environment.
`dbt build --vars '{min_date: ..., max_date: ...}'` keeps working from the command line, and a
var takes precedence over the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from warehouse import WarehouseConfig
from warehouse.config import environment

WINDOW_MIN_DATE = "METRICS_WINDOW_MIN_DATE"
WINDOW_MAX_DATE = "METRICS_WINDOW_MAX_DATE"


@contextmanager
def absolute_duckdb_path() -> Iterator[None]:
    """Make METRICS_DUCKDB_PATH absolute (relative to this process's cwd) while dbt starts.

    dagster-dbt runs dbt inside the project directory, where the relative default
    `.data/warehouse.duckdb` would name another file than the one the rest of the project uses.
    """
    with environment({"METRICS_DUCKDB_PATH": str(Path(WarehouseConfig().duckdb_path).resolve())}):
        yield


@contextmanager
def dbt_window(start: date | None, end: date | None) -> Iterator[None]:
    """Give dbt processes started inside the block the half-open window [start, end); with
    None, no window (a full build), whatever the calling environment holds."""
    with environment(
        {
            WINDOW_MIN_DATE: start.isoformat() if start else None,
            WINDOW_MAX_DATE: end.isoformat() if end else None,
        }
    ):
        yield
