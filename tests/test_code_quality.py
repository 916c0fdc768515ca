"""The code base stays lint-clean and the environment matches the lock: checked on `make test`.

The tools themselves are pinned in `requirements.lock`, so a fresh clone runs the same ruff and
mypy as everyone else and cannot go red without a change.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT = "metrics-aggregation"


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_the_packages() -> None:
    result = _run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_environment_holds_exactly_the_locked_versions() -> None:
    """A sync from the lock would change nothing but the editable project itself."""
    result = _run(
        str(BIN / "uv"), "pip", "sync", "--dry-run", "--python", sys.executable,
        "--require-hashes", "requirements.lock",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    changes = [
        line.strip()
        for line in (result.stdout + result.stderr).splitlines()
        if re.match(r"\s*[-+] ", line)
    ]
    assert all(change.startswith(f"- {PROJECT}==") for change in changes), changes
