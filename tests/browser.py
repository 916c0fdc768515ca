"""Headless Chromium for page tests: Debian's package, installed when missing (as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium_path() -> str:
    """The chromium binary; installs Debian's package when missing, else skips (or fails
    when METRICS_REQUIRE_SERVICES=1)."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"],
            env=env,
            check=False,
            capture_output=True,
        )
        found = shutil.which("chromium")
    if found is None:
        if os.environ.get("METRICS_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed and could not be installed")
        pytest.skip("chromium is not installed")
    return found


def headless_flags(profile: Path, budget_ms: int = 20000) -> list[str]:
    """Flags for a quiet, sandbox-free headless run that lets the page's scripts finish."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        "--window-size=1600,1000",
        f"--virtual-time-budget={budget_ms}",
    ]
