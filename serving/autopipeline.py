"""Commands awaited in the same event-loop turn go to Redis together, as one pipeline.

An asyncio server answering many requests at once would otherwise pay, per cache hit, a
connection checkout, a send and a receive and a round trip of its own; hits that start in the
same turn of the loop share them. Each caller still gets its own reply or its own error.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

AsyncClient = redis.asyncio.Redis | AsyncRedisCluster


class AutoPipeline:
    """Queues `execute` calls of one event loop and sends each turn's calls in one pipeline
    (non-transactional: replies come back in order, one failing command fails only its caller).
    """

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

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
                replies: list[Any] = [await self.client.execute_command(*batch[0][0])]
            else:
                pipe = self.client.pipeline(transaction=False)
                for args, _ in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
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

    async def aclose(self) -> None:
        """Wait for the batches in flight, then close the client."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        await self.client.aclose()
