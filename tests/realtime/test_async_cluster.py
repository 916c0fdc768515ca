"""realtime.async_cluster without Redis: which errors are a connection closed under a command
(their positive side, redis-py's own, is met in tests/realtime/test_cluster.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from realtime.async_cluster import closed_under_command


def _raised(function: Callable[[], object]) -> AttributeError | TypeError:
    try:
        function()
    except (AttributeError, TypeError) as error:
        return error
    raise AssertionError("nothing raised")


def test_an_error_about_none_raised_outside_redis_py_is_a_bug() -> None:
    writer: object = None
    assert not closed_under_command(_raised(lambda: writer.writelines([b"x"])))  # type: ignore[attr-defined]
    assert not closed_under_command(_raised(lambda: writer()))  # type: ignore[operator]


@pytest.mark.parametrize("message", ["has no attribute 'x'", "is not callable"])
def test_an_error_about_anything_but_none_is_a_bug(message: str) -> None:
    assert not closed_under_command(AttributeError(f"'Connection' object {message}"))
    assert not closed_under_command(TypeError(f"'Connection' object {message}"))
