"""The realtime and serving packages: no import circle, every module imports on its own, and
the Prometheus renderer needs no Redis client."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("realtime", "serving")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Project modules `name` imports anywhere in its file (also under TYPE_CHECKING or
    inside functions: a circle there is still a circle in the design)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in MODULES and t != name}


def _graph() -> dict[str, set[str]]:
    return {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle in the graph of module imports, ignoring a package's own __init__ re-exports
    (a submodule importing a sibling through the package is not a circle by itself)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if node.startswith(f"{target}."):
                continue  # a submodule reaching its own package's __init__
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_prometheus_renders_without_a_client() -> None:
    imported = _imports("realtime.prometheus", MODULES["realtime.prometheus"])
    clients = {"realtime", "realtime.metrics", "realtime.async_metrics", "realtime.core"}
    assert not imported & clients
    source = MODULES["realtime.prometheus"].read_text("utf-8")
    assert "import redis" not in source and "from redis" not in source


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_on_its_own(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_serve_tokens_and_custom_start_without_dagster() -> None:
    """`metrics serve`, `tokens` and `custom` load the CLI, the HTTP server and the custom
    metrics CLI without importing Dagster (only backfill, aggregate and demo run it)."""
    modules = ("orchestration.cli", "serving.http.cli", "serving.http.app", "custom_metrics.cli")
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('dagster' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
