"""The dbt project as Dagster sees it: a `DbtProject` per warehouse target, whose manifest is
parsed when it is missing or older than the project's files.

`DbtProject.prepare_if_dev()` parses only under `dagster dev`; a fresh clone run from the CLI,
the demo or the tests has no manifest at all, so `ensure_manifest` parses whenever the manifest
is stale, wherever the code location loads. Each parse writes into its own scratch directory and
the manifest is moved into place atomically, so concurrent processes (a code server, test
workers) never read a half-written file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtProject

from warehouse import WarehouseConfig
from warehouse.config import environment
from warehouse.dbt_runner import DBT_PROJECT_DIR, run_dbt

PROJECT_DIR = Path(DBT_PROJECT_DIR)
_SOURCE_DIRS = ("models", "macros", "tests")
_SOURCE_FILES = ("dbt_project.yml", "profiles.yml")


@contextmanager
def absolute_warehouse_paths() -> Iterator[None]:
    """Make the warehouse's paths absolute (relative to this process's cwd) while dbt starts.

    dbt runs inside the project directory, where the relative defaults (`.data/warehouse.duckdb`,
    `.data/spark/...`) would name other files than the ones the rest of the project uses.
    """
    config = WarehouseConfig()
    paths = {
        "METRICS_DUCKDB_PATH": config.duckdb_path,
        "METRICS_SPARK_WAREHOUSE_DIR": config.spark_warehouse_dir,
        "METRICS_SPARK_METASTORE_DIR": config.spark_metastore_dir,
        "METRICS_SPARK_JDBC_JAR": config.spark_jdbc_jar,
    }
    with environment({name: str(Path(path).resolve()) for name, path in paths.items()}):
        yield


def _source_files(project_dir: Path) -> Iterable[Path]:
    for name in _SOURCE_FILES:
        path = project_dir / name
        if path.exists():
            yield path
    for directory in _SOURCE_DIRS:
        root = project_dir / directory
        if root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())


def is_stale(manifest: Path, project_dir: Path = PROJECT_DIR) -> bool:
    """True when the manifest is missing or any model, macro, test or config file is newer."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(source.stat().st_mtime > built for source in _source_files(project_dir))


def ensure_manifest(project: DbtProject) -> Path:
    """The project's manifest, parsed first (`dbt parse`) when it is missing or stale."""
    manifest = project.manifest_path
    if not is_stale(manifest, project.project_dir):
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=manifest.parent))
    try:
        with absolute_warehouse_paths():
            run_dbt("parse", target_path=scratch)
        os.replace(scratch / "manifest.json", manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest


def metrics_project(target: str | None = None) -> DbtProject:
    """The dbt project on a warehouse target (default METRICS_TARGET), one target directory per
    target (`target/dagster-<target>`: adapters record different metadata)."""
    target = target or WarehouseConfig().target
    return DbtProject(
        project_dir=PROJECT_DIR,
        profiles_dir=PROJECT_DIR,
        target=target,
        target_path=Path("target") / f"dagster-{target}",
    )


def prepared_project(target: str | None = None) -> DbtProject:
    """The project with an up-to-date manifest, parsed first if needed."""
    project = metrics_project(target)
    ensure_manifest(project)
    return project
