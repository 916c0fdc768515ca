"""Commands awaited in the same event-loop turn go to Redis together, as one pipeline.

An asyncio server answering many requests at once would otherwise pay, per cache hit, a
connection checkout, a send and a receive and a round trip of its own; hits that start in the
same turn of the loop share them. Each caller still gets its own reply or its own error.

On an asyncio Redis Cluster each batch goes through `realtime.async_cluster.ClusterGate`: sent
only once the client knows the cluster's slots, at most ``max_connections`` batches in flight
(a batch waits for its turn up to the client's socket timeout), a connection that redis-py
closes under a batch fails it with a ``ConnectionError``, not an ``AttributeError``, and a
client whose nodes lost their connections is replaced (given ``renew``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from realtime.async_cluster import ClusterGate, needs_gate

AsyncClient = redis.asyncio.Redis | AsyncRedisCluster


class AutoPipeline:
    """Queues `execute` calls of one event loop and sends each turn's calls in one pipeline
    (non-transactional: replies come back in order, one failing command fails only its caller).
    """

    def __init__(self, client: AsyncClient, renew: Callable[[], AsyncClient] | None = None) -> None:
        """``renew``: makes a client like `client`, for the cluster gate to replace one whose
        nodes lost their connections (`realtime.async_cluster`)."""
        self._client = client
        self._gate: ClusterGate | None = None
        if needs_gate(client):
            wait = client.get_connection_kwargs().get("socket_timeout")
            self._gate = ClusterGate(client, wait) if wait else ClusterGate(client)
            self._gate.renew = cast(Callable[[], AsyncRedisCluster] | None, renew)
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> AsyncClient:
        """The redis-py client (on a Redis Cluster, the one the gate holds now)."""
        return self._gate.client if self._gate is not None else self._client

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """The reply of the Redis command ``args`` (a future: await it); a failed command or
        connection sets its exception instead."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        self._queued.append((args, reply))
        if len(self._queued) == 1:  # the first of this turn: send once the others have joined
            task = loop.create_task(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return reply

    async def _send(self) -> None:
        batch, self._queued = self._queued, []
        try:
            if len(batch) == 1:
                replies: list[Any] = [await self._run(self.client.execute_command, *batch[0][0])]
            else:
                pipe = self.client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await self._run(pipe.execute, raise_on_error=False)
        except asyncio.CancelledError:
            for _, reply in batch:
                reply.cancel()
            raise
        except Exception as error:  # the connection, a timeout: every caller of the batch
            for _, reply in batch:
                if not reply.done():
                    reply.set_exception(error)
            return
        for (_, reply), value in zip(batch, replies, strict=True):
            if reply.done():  # its caller went away (a cancelled request)
                continue
            if isinstance(value, Exception):
                reply.set_exception(value)
            else:
                reply.set_result(value)

    async def _run(self, function: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """``await function(*args, **kwargs)``, through the cluster gate on a Redis Cluster."""
        if self._gate is not None:
            return await self._gate.run(function, *args, **kwargs)
        return await function(*args, **kwargs)

    async def aclose(self) -> None:
        """Wait for the batches in flight, then close the client."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self.client.aclose()
