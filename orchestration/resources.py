"""Dagster resources: the dbt CLI on the project (the warehouse is configured from the env)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource
from packaging import version

from orchestration.manifest import PROJECT_DIR
from warehouse import WarehouseConfig


def dbt_executable() -> str:
    """The `dbt` next to this interpreter (the venv's), so PATH need not include the venv."""
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.exists():
        return str(candidate)
    return shutil.which("dbt") or "dbt"


@contextmanager
def absolute_duckdb_path() -> Iterator[None]:
    """Make METRICS_DUCKDB_PATH absolute (relative to this process's cwd) while dbt starts.

    dagster-dbt runs dbt inside the project directory, where the relative default
    `.data/warehouse.duckdb` would name another file than the one the rest of the project uses.
    """
    relative = os.environ.get("METRICS_DUCKDB_PATH")
    resolved = str(Path(WarehouseConfig().duckdb_path).resolve())
    os.environ["METRICS_DUCKDB_PATH"] = resolved
    try:
        yield
    finally:
        if relative is None:
            os.environ.pop("METRICS_DUCKDB_PATH", None)
        else:
            os.environ["METRICS_DUCKDB_PATH"] = relative


class ProjectDbtCliResource(DbtCliResource):
    """DbtCliResource for this project: the DuckDB path made absolute for dbt (see
    `absolute_duckdb_path`), and the dbt version read from the installed package (dagster-dbt
    otherwise runs `dbt --version`, seconds per run, for the same answer)."""

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        with absolute_duckdb_path():
            return super().cli(args, **kwargs)

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable) == Path(sys.executable).with_name("dbt"):
            return version.parse(installed_version("dbt-core"))
        return super()._cli_version


def dbt_resource() -> DbtCliResource:
    """dbt on the project; the target comes from METRICS_TARGET through profiles.yml."""
    return ProjectDbtCliResource(
        project_dir=str(PROJECT_DIR),
        profiles_dir=str(PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )
