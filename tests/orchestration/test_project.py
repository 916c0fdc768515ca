"""A fresh clone has no dbt_project/target: the manifest is parsed on first load, and again
only when a model, macro, test or config file is newer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster_dbt import DbtProject

from orchestration import project as manifest


def test_missing_manifest_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_TARGET", "duckdb")
    project = DbtProject(
        project_dir=manifest.PROJECT_DIR, target="duckdb", target_path=tmp_path / "target"
    )
    target = project.manifest_path

    assert manifest.ensure_manifest(project) == target
    nodes = json.loads(target.read_text())["nodes"]
    assert "model.metrics_aggregation.weekly_metrics" in nodes
    assert not list(target.parent.glob(".parse-*"))  # the scratch directory is gone

    built = target.stat().st_mtime_ns
    assert manifest.ensure_manifest(project) == target
    assert target.stat().st_mtime_ns == built  # up to date: not parsed again


def test_staleness_follows_the_project_files(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    model = project / "models" / "m.sql"
    model.write_text("select 1")
    built = tmp_path / "manifest.json"
    assert manifest.is_stale(built, project)
    built.write_text("{}")
    os.utime(model, (1_000_000, 1_000_000))
    assert not manifest.is_stale(built, project)
    os.utime(model, None)  # the model changed after the manifest
    os.utime(built, (1_000_000, 1_000_000))
    assert manifest.is_stale(built, project)
