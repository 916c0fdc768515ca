"""The dbt manifest the Dagster assets are built from, produced with `dbt parse` when missing.

A fresh clone has no `dbt_project/target`, and `DbtProject.prepare_if_dev()` only parses under
`dagster dev`; so this parses whenever the manifest is missing or older than the project's
sources. Each parse writes into its own temporary target directory and the manifest is moved
into place atomically, so concurrent processes (test workers, a code server) never read a
half-written file or clobber each other's artifacts. The parse itself (`partial_parse.msgpack`)
is kept next to the manifest, and refreshed after each successful rollup run, so that dbt
invocations from Dagster parse only what changed (see orchestration.dbt_env).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from orchestration.dbt_env import absolute_duckdb_path, dbt_window
from warehouse import WarehouseConfig
from warehouse.dbt_runner import DBT_PROJECT_DIR, run_dbt

PROJECT_DIR = Path(DBT_PROJECT_DIR)
_SOURCE_DIRS = ("models", "macros", "tests")
_SOURCE_FILES = ("dbt_project.yml", "profiles.yml")
PARTIAL_PARSE = "partial_parse.msgpack"


def parse_home(target: str | None = None) -> Path:
    """The directory of a dbt target's manifest and saved parse (one per target: adapter
    metadata differs); Dagster's dbt invocations write their artifacts in subdirectories."""
    target = target or WarehouseConfig().target
    return PROJECT_DIR / "target" / f"dagster-{target}"


def manifest_path(target: str | None = None) -> Path:
    """Where the manifest for a dbt target lives."""
    return parse_home(target) / "manifest.json"


def save_parse(target_path: Path, target: str | None = None) -> None:
    """Keep the parse saved by a dbt invocation in `target_path` for the next invocations
    (atomically: concurrent runs may read it)."""
    source = target_path / PARTIAL_PARSE
    if not source.exists():
        return
    home = parse_home(target)
    scratch = Path(tempfile.mkstemp(prefix=".parse-", dir=home)[1])
    try:
        shutil.copyfile(source, scratch)
        os.replace(scratch, home / PARTIAL_PARSE)
    finally:
        scratch.unlink(missing_ok=True)


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
        # The environment Dagster's dbt processes get (orchestration.dbt_env), so that they can
        # reuse this parse instead of parsing everything again.
        with absolute_duckdb_path(), dbt_window(None, None):
            run_dbt("parse", target_path=scratch)
        os.replace(scratch / "manifest.json", path)
        save_parse(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path
