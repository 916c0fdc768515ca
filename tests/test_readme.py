"""The README's Python examples run as written (on this run's Redis key prefix where they use
Redis), so a change of behaviour cannot leave an example behind that fails for the first
reader."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from realtime import RealtimeMetrics

README = Path(__file__).resolve().parents[1] / "README.md"


def run_example(
    heading: str,
    redis_url: str | None = None,
    options: dict[str, Any] | None = None,
    edits: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Execute the first ```python block after `heading` (a whole line of README.md), with its
    Redis client made from `redis_url` and `options` instead of the README's URL (if given),
    and each of `edits` made (every one must still apply); returns the block's names."""
    text = README.read_text()
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, text.index(f"\n{heading}\n"))
    assert match is not None, f"no python block after {heading!r}"
    code = match.group(1)
    changes = dict(edits or {})
    if redis_url is not None:
        changes['from_url("redis://localhost:6379/0")'] = "from_url(URL, **OPTIONS)"
    for old, new in changes.items():
        assert old in code, f"the README's example no longer contains {old!r}"
        code = code.replace(old, new)
    names: dict[str, Any] = {"URL": redis_url, "OPTIONS": options or {}}
    exec(compile(code, str(README), "exec"), names)  # our own README
    return names


def test_the_realtime_example_runs(redis_url: str, redis_prefix: str) -> None:
    options = {"prefix": redis_prefix, "fail_open": False}
    ran = run_example("### Realtime metrics (Redis)", redis_url, options, {"print(": "str("})
    rt: RealtimeMetrics = ran["rt"]
    try:
        assert rt.get_counter("page_views", labels={"page": "/pricing"}) == 1
        assert rt.get_counter("page_views", labels={"page": "/"}) == 1
        assert rt.get_top("top.pages", 10) == [("/pricing", 1)]
        assert rt.get_unique("visitors") == 1
        assert ran["snap"].count == 1
        assert 'page_views{page="/pricing"} 1' in rt.export_prometheus()
    finally:
        rt.close()


def test_the_custom_metrics_example_compiles_to_bound_sql() -> None:
    compiled = run_example("### Custom metrics")["compiled"]
    assert "%(" in compiled.sql and "license_renewal" not in compiled.sql
    assert "license_renewal" in compiled.params.values()
