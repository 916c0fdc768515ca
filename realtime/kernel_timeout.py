"""Socket timeouts enforced by the kernel instead of by Python, for the hot write and read paths.

A redis-py connection with ``socket_timeout`` puts its socket in Python's timeout mode, where
every send and every receive first waits in ``poll()``: two extra system calls per command,
which on a loopback round trip is a measurable share of the cost. Setting ``SO_RCVTIMEO`` and
``SO_SNDTIMEO`` instead keeps the socket blocking (no poll) with the same bound: a receive or
send that waits longer fails with ``EAGAIN``, which this connection reports as redis-py's
``TimeoutError`` (and drops the connection, as redis-py does on any timeout).
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any
from urllib.parse import urlparse

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# SO_RCVTIMEO / SO_SNDTIMEO take a struct timeval; its layout is (long, long) on Linux.
SUPPORTED = sys.platform.startswith("linux") and hasattr(socket, "SO_RCVTIMEO")


class KernelTimeoutConnection(redis.Connection):
    """A TCP connection whose read/write timeout (``io_timeout`` seconds) is a kernel socket
    option; redis-py itself sees no socket timeout, so it never polls before a call."""

    def __init__(self, *, io_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.io_timeout = io_timeout

    def _connect(self) -> socket.socket:
        sock: socket.socket = super()._connect()
        if self.io_timeout:
            seconds = int(self.io_timeout)
            micros = round((self.io_timeout - seconds) * 1_000_000)
            timeval = struct.pack("ll", seconds, micros)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        return sock

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except RedisConnectionError as error:
            if isinstance(error.__context__, BlockingIOError):  # EAGAIN: the kernel timeout
                raise self._timeout("reading from") from error
            raise

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().send_packed_command(*args, **kwargs)
        except RedisConnectionError as error:
            if isinstance(error.__context__, BlockingIOError):
                raise self._timeout("writing to") from error
            raise

    def _timeout(self, action: str) -> RedisTimeoutError:
        return RedisTimeoutError(f"Timeout {action} {self._host_error()} after {self.io_timeout}s")


def pool_options(url: str, socket_timeout: float | None) -> dict[str, Any]:
    """Connection-pool keyword arguments that bound each read and write by `socket_timeout`:
    through the kernel for plain ``redis://`` URLs on Linux, else redis-py's own timeout (TLS
    and Unix-socket connections, other systems)."""
    if SUPPORTED and socket_timeout and urlparse(url).scheme == "redis":
        return {
            "connection_class": KernelTimeoutConnection,
            "io_timeout": socket_timeout,
            "socket_timeout": None,
        }
    return {"socket_timeout": socket_timeout}
