"""The dbt manifest the Dagster assets are built from, produced with `dbt parse` when missing.

A fresh clone has no `dbt_project/target`, and `DbtProject.prepare_if_dev()` only parses under
`dagster dev`; so this parses whenever the manifest is missing or older than the project's
sources. Each parse writes into its own temporary target directory and the manifest is moved
into place atomically, so concurrent processes (test workers, a code server) never read a
half-written file or clobber each other's artifacts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from warehouse import WarehouseConfig
from warehouse.dbt_runner import DBT_PROJECT_DIR, run_dbt

PROJECT_DIR = Path(DBT_PROJECT_DIR)
_SOURCE_DIRS = ("models", "macros", "tests")
_SOURCE_FILES = ("dbt_project.yml", "profiles.yml")


def manifest_path(target: str | None = None) -> Path:
    """Where the manifest for a dbt target lives (one per target: adapter metadata differs)."""
    target = target or WarehouseConfig().target
    return PROJECT_DIR / "target" / f"dagster-{target}" / "manifest.json"


def _source_files(project_dir: Path) -> Iterable[Path]:
    for name in _SOURCE_FILES:
        path = project_dir / name
        if path.exists():
            yield path
    for directory in _SOURCE_DIRS:
        root = project_dir / directory
        if root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())


def is_stale(path: Path, project_dir: Path = PROJECT_DIR) -> bool:
    """True when the manifest is missing or any model, macro, test or config file is newer."""
    if not path.exists():
        return True
    built = path.stat().st_mtime
    return any(source.stat().st_mtime > built for source in _source_files(project_dir))


def ensure_manifest() -> Path:
    """Path of an up-to-date manifest for METRICS_TARGET, running `dbt parse` first if needed."""
    path = manifest_path()
    if not is_stale(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".parse-", dir=path.parent))
    try:
        run_dbt("parse", target_path=scratch)
        os.replace(scratch / "manifest.json", path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path
