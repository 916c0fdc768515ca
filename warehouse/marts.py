"""The output tables as Python code sees them, read from the dbt project's model contracts.

The dbt yml files under `dbt_project/models/marts` declare every rollup with an enforced
contract (columns and types); this module reads them, so the reader, the custom-metric sources,
the demo report and the tests share one declaration instead of repeating column lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import yaml

from warehouse.calendar import Grain

MARTS_DIR: Final = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "marts"
DIMENSIONS: Final = ("entity_type", "entity_id", "event_type")
MEASURES: Final = ("event_count", "unique_actors", "revenue_cents")
# The date column that names a row's period, in order of preference.
_PERIOD_COLUMNS: Final = ("metric_date", "month_start", "week_start")


@dataclass(frozen=True)
class Mart:
    """One output table: its name, grain, period column and typed columns (in order)."""

    name: str
    grain: Grain
    period_column: str
    columns: tuple[tuple[str, str], ...]
    description: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def key(self) -> tuple[str, ...]:
        """The grain's columns: every date column, then the dimensions."""
        dates = tuple(n for n, t in self.columns if t == "date")
        return (*dates, *DIMENSIONS)


def _models(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text()) or {}
    return list(document.get("models") or [])


def _grain(model: dict[str, Any]) -> Grain | None:
    for tag in (model.get("config") or {}).get("tags") or ():
        try:
            return Grain.parse(tag)
        except ValueError:
            continue
    return None


@cache
def marts(directory: Path = MARTS_DIR) -> dict[str, Mart]:
    """Every contracted rollup in the marts folder, by table name."""
    found: dict[str, Mart] = {}
    for path in sorted(directory.glob("*.yml")):
        for model in _models(path):
            config = model.get("config") or {}
            if not (config.get("contract") or {}).get("enforced"):
                continue
            grain = _grain(model)
            columns = tuple(
                (str(c["name"]), str(c.get("data_type", ""))) for c in model.get("columns") or ()
            )
            names = [name for name, _ in columns]
            period = next((c for c in _PERIOD_COLUMNS if c in names), None)
            if grain is None or period is None:
                continue
            found[str(model["name"])] = Mart(
                name=str(model["name"]),
                grain=grain,
                period_column=period,
                columns=columns,
                description=" ".join(str(model.get("description") or "").split()),
            )
    return found


def mart(name: str) -> Mart:
    """One rollup by table name; KeyError names the tables that exist."""
    tables = marts()
    if name not in tables:
        raise KeyError(f"no rollup named {name!r}; the rollups are {', '.join(sorted(tables))}")
    return tables[name]


def rollup_for(grain: Grain) -> Mart:
    """The main rollup of a grain: `daily_metrics`, `weekly_metrics` or `monthly_metrics`."""
    return mart(f"{grain.adjective}_metrics")
