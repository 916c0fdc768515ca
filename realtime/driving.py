"""How one client policy serves both the blocking and the asyncio client.

The policy (`realtime.core.RealtimeCore`) is written once, as coroutines that reach Redis only
through `RealtimeCore._call` and `RealtimeCore._pipeline_raw`. Those await a reply only when
the redis-py client returned an awaitable, so:

* `AsyncRealtimeMetrics` (an `Asynchronous` client on ``redis.asyncio``) hands the coroutines
  to the caller's event loop as they are;
* `RealtimeMetrics` (a `Blocking` client on plain ``redis``) gets its replies at once, so a
  coroutine never suspends: `run_blocking` runs it to its end with one ``send(None)``, with no
  event loop.

`api` turns a core coroutine into the client method of each kind, with the right type.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

P = ParamSpec("P")
R = TypeVar("R")


class Blocking:
    """Marker of a client whose methods return their results."""


class Asynchronous:
    """Marker of a client whose methods return coroutines."""


def run_blocking(coroutine: Coroutine[Any, Any, R]) -> R:
    """Run a core coroutine on a blocking client to its end (it never suspends)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError(_SUSPENDED)


_SUSPENDED = "a blocking realtime client was given an awaitable reply"


class api(Generic[P, R]):
    """A client method written once as a core coroutine; each client kind calls it its way."""

    def __init__(self, coroutine: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]) -> None:
        self.coroutine = coroutine
        self.name = coroutine.__name__
        self.__doc__ = coroutine.__doc__
        self.signature = inspect.signature(coroutine)

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(
        self, obj: None, owner: type[Any]
    ) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]: ...

    @overload
    def __get__(self, obj: Blocking, owner: type[Any]) -> Callable[P, R]: ...

    @overload
    def __get__(
        self, obj: Asynchronous, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self.coroutine  # the class attribute: the documented signature
        bound: Callable[..., Any]
        if isinstance(obj, Blocking):
            coroutine = self.coroutine

            @functools.wraps(coroutine)
            def bound(*args: Any, **kwargs: Any) -> Any:
                # run_blocking written out: one call less on every write.
                running = coroutine(obj, *args, **kwargs)
                try:
                    running.send(None)
                except StopIteration as done:
                    return done.value
                running.close()
                raise RuntimeError(_SUSPENDED)

            bound.__signature__ = self.signature.replace(  # type: ignore[attr-defined]
                parameters=list(self.signature.parameters.values())[1:]
            )
        else:
            bound = self.coroutine.__get__(obj, owner)
        obj.__dict__[self.name] = bound  # bound once per client: later calls skip this
        return bound
