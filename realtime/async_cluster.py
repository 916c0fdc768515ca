"""What redis-py's asyncio Redis Cluster client needs before many tasks may share it.

`redis.asyncio.RedisCluster` differs from the blocking clients in three ways that matter when
hundreds of tasks write at once:

* It finds the cluster's nodes and slots only in ``await initialize()``, which its documentation
  asks for before use. Until then, and again after redis-py closes its nodes on a cluster error,
  commands issued meanwhile are sent to a random node: concurrent first writes come back MOVED,
  every fifth MOVED makes redis-py close every node's connections (``reinitialize_steps``), and
  the commands in flight on them fail.
* A command whose connection another task closes meanwhile (redis-py does that to a node's
  connections when one of its commands fails, and to every node's on a cluster error) may fail
  with an ``AttributeError`` or ``TypeError`` about ``None`` from inside redis-py (the
  connection's stream writer or reader gone: redis-py issues 2349, 3546 and 4287, raised as
  ``ConnectionError`` upstream only after the redis<8 this project pins). No fail-open policy
  could tell that from a bug.
* Its nodes raise ``MaxConnectionsError`` as soon as ``max_connections`` commands are in flight,
  where the standalone client's ``BlockingConnectionPool`` waits ``pool_timeout`` for one.
* A node never takes back the connection of a command whose send failed or was cancelled
  (redis-py issue 4110, still in the redis 7.4.1 this project locks). A failed command makes
  redis-py re-read the slots and route them through new nodes, which sheds those; a cancelled
  one does not, and the re-read itself asks the startup nodes, which are kept: each re-read
  while no node answers (the whole cluster down) loses one of their connections. A node with
  none left raises ``MaxConnectionsError`` (a re-read, "cannot be connected") for good.

`ClusterGate` runs each command of the realtime client, and of the dashboard cache's asyncio
hit path (`serving.autopipeline`), after ``initialize()`` (a no-op once the client knows its
slots), lets at most the nodes' ``max_connections`` commands be in flight at once (waiting up to
`wait` seconds for a turn as the blocking pool would, then raising the pool's
``ConnectionError``), and raises that symptom of a connection closed under a command as the
``ConnectionError`` it is. The realtime fail-open policy, and the cache's fall back to its
blocking path, then see "Redis unavailable" for all of these. With no more than
``max_connections`` commands in flight, a ``MaxConnectionsError`` can only mean lost
connections: given `renew` (`AsyncRealtimeMetrics.from_url` gives it), the gate then replaces
the client with a new one and closes the old, so the next commands go through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError, MaxConnectionsError, RedisClusterException


def needs_gate(client: object) -> TypeGuard[RedisCluster]:
    """True for an asyncio Redis Cluster client."""
    return isinstance(client, RedisCluster)


class ClusterGate:
    """Initializes an asyncio RedisCluster before each command and bounds commands in flight."""

    def __init__(self, client: RedisCluster, wait: float = 1.0) -> None:
        self.client = client
        self.wait = wait  # seconds a command waits for its turn (from_url's pool_timeout)
        # Makes a client like `client`, to replace one whose nodes lost their connections.
        self.renew: Callable[[], RedisCluster] | None = None
        self._turns: asyncio.Semaphore | None = None  # made once the nodes are known

    async def run(self, function: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """``await function(*args, **kwargs)`` (a method of the client or of its pipeline) on an
        initialized client, as one of at most ``max_connections`` commands in flight."""
        client = self.client
        try:
            await client.initialize()
            turns = await self._turn()
            try:
                return await function(*args, **kwargs)
            finally:
                turns.release()
        except MaxConnectionsError:
            await self._renew(client)
            raise
        except RedisClusterException as error:
            if isinstance(error.__cause__, MaxConnectionsError):  # re-reading the slots
                await self._renew(client)
            raise
        except (AttributeError, TypeError) as error:
            if closed_under_command(error):
                raise ConnectionError(f"Connection closed during the command ({error})") from error
            raise

    async def _turn(self) -> asyncio.Semaphore:
        """Wait up to `wait` seconds for one of the turns (raising the pool's ConnectionError
        past it); returns the semaphore to release."""
        turns = self._turns or self._make_turns()
        if not turns.locked():
            await turns.acquire()
            return turns
        try:
            async with asyncio.timeout(self.wait):
                await turns.acquire()
        except TimeoutError:
            raise ConnectionError("No connection available.") from None
        return turns

    async def execute_command(self, *args: Any) -> Any:
        """The client's ``execute_command`` through the gate (the core's hot path)."""
        return await self.run(self.client.execute_command, *args)

    async def _renew(self, stale: RedisCluster) -> None:
        """Replace `stale` (whose nodes lost connections) by a new client, once, and close it:
        its commands still in flight fail as connections closed under them."""
        if self.renew is None or self.client is not stale:
            return
        self.client = self.renew()
        await stale.aclose()

    def _make_turns(self) -> asyncio.Semaphore:
        # Every node of a client gets the same max_connections (redis-py's default: 2**31).
        limit = min((node.max_connections for node in self.client.get_nodes()), default=1)
        self._turns = asyncio.Semaphore(limit)
        return self._turns


# Where redis-py reads and writes a connection's streams (its asyncio connection and parsers).
_CONNECTION_MODULES = ("redis.asyncio.connection", "redis._parsers.")


def closed_under_command(error: AttributeError | TypeError) -> bool:
    """True for redis-py's asyncio symptom of a connection closed by another task during a
    command: an AttributeError or TypeError about None (``'NoneType' object has no attribute
    'writelines'``, ``... is not callable``) whose innermost redis-py frame reads or writes the
    connection. Any other AttributeError or TypeError is a bug and stays one."""
    if "'NoneType' object" not in str(error):
        return False
    innermost = ""
    frame = error.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module.startswith("redis."):
            innermost = module
        frame = frame.tb_next
    return innermost.startswith(_CONNECTION_MODULES)
