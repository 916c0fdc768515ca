"""Dagster resources: dagster-dbt's DbtCliResource on the project (the warehouse comes from the
environment through profiles.yml)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject

from orchestration.project import absolute_warehouse_paths, metrics_project


def dbt_executable() -> str:
    """The `dbt` next to this interpreter (the venv's, so PATH need not include the venv), else
    the one on PATH. Each invocation is a child process of the run, so it dies with the run."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else shutil.which("dbt") or "dbt"


class ProjectDbtCliResource(DbtCliResource):
    """DbtCliResource that hands dbt absolute warehouse paths (see `absolute_warehouse_paths`)."""

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        with absolute_warehouse_paths():
            return super().cli(args, **kwargs)


def dbt_resource(project: DbtProject | None = None) -> DbtCliResource:
    """dbt on the project; the target comes from METRICS_TARGET through profiles.yml."""
    project = project or metrics_project()
    return ProjectDbtCliResource(
        project_dir=str(project.project_dir),
        profiles_dir=str(project.profiles_dir),
        target=project.target,
        dbt_executable=dbt_executable(),
    )
