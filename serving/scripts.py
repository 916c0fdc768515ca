"""The cache's server-side Lua scripts (serving/lua/*.lua), read once from the package."""

from __future__ import annotations

from functools import cache
from importlib import resources

SCRIPT_NAMES = ("versions", "bump", "write", "release")


@cache
def script_source(name: str) -> str:
    """The source of one cache script."""
    if name not in SCRIPT_NAMES:
        raise KeyError(f"unknown cache script {name!r}")
    return resources.files("serving").joinpath("lua", f"{name}.lua").read_text("utf-8")
