"""Dagster resources: the dbt CLI on the project (the warehouse is configured from the env)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource
from packaging import version

from orchestration.dbt_env import absolute_duckdb_path
from orchestration.manifest import PROJECT_DIR, parse_home
from warehouse import WarehouseConfig
from warehouse.config import environment


def dbt_executable() -> str:
    """The `dbt` next to this interpreter (the venv's, so PATH need not include the venv), else
    the one on PATH. Each invocation is a child process of the run, so it dies with the run."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else shutil.which("dbt") or "dbt"


class ProjectDbtCliResource(DbtCliResource):
    """DbtCliResource for this project, set up so that each run starts quickly:

    - the DuckDB path made absolute for dbt (see `absolute_duckdb_path`);
    - each invocation's target directory under the target's own directory, where dagster-dbt
      finds the saved parse (`partial_parse.msgpack`, see orchestration.manifest) and copies
      it in, so dbt parses only what changed;
    - the dbt version read from the installed package (dagster-dbt otherwise runs
      `dbt --version`, seconds per run, for the same answer);
    - no in-process dbt adapter (see `_initialize_dbt_core_adapter`).
    """

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        home = parse_home()
        home.mkdir(parents=True, exist_ok=True)
        with absolute_duckdb_path(), environment({"DBT_TARGET_PATH": str(home)}):
            return super().cli(args, **kwargs)

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        """None: dagster-dbt builds a dbt adapter in the Dagster process on every `cli()` call
        (loading the profile and parsing all of dbt's macros, about 1.5 s) only for
        `fetch_column_metadata()` / `fetch_row_counts()`, which this project does not use; its
        own metadata comes from the run results and the warehouse (orchestration.metadata)."""
        return None

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(installed_version("dbt-core"))
        return super()._cli_version


def dbt_resource() -> DbtCliResource:
    """dbt on the project; the target comes from METRICS_TARGET through profiles.yml."""
    return ProjectDbtCliResource(
        project_dir=str(PROJECT_DIR),
        profiles_dir=str(PROJECT_DIR),
        dbt_executable=dbt_executable(),
        # Named like `run_dbt` names it, so the saved parse (made by `dbt parse --target ...`)
        # matches: dbt re-parses everything when the target argument differs.
        target=WarehouseConfig().target,
    )
