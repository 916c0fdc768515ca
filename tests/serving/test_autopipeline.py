"""`AutoPipeline` on the real Redis: the commands of one event-loop turn travel together, each
caller gets its own reply or error, and a caller that goes away disturbs no one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.exceptions import NoScriptError, RedisError

from serving.autopipeline import AutoPipeline


def _named_client(url: str, name: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, client_name=name)


def test_the_commands_of_one_turn_share_one_connection_and_keep_their_replies(
    redis_url: str, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    keys = [f"{redis_prefix}k{n}" for n in range(5)]
    for n, key in enumerate(keys):
        raw_redis.set(key, f"value {n}")
    name = f"autopipeline-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[Any], list[dict[str, str]]]:
        pipeline = AutoPipeline(_named_client(redis_url, name))
        try:
            replies = await asyncio.gather(
                *(pipeline.execute("GET", key) for key in keys),
                pipeline.execute("EVALSHA", "0" * 40, 0),  # no such script: this caller only
                pipeline.execute("GET", f"{redis_prefix}missing"),
                return_exceptions=True,
            )
            connections = [c for c in raw_redis.client_list() if c["name"] == name]
            return replies, connections
        finally:
            await pipeline.aclose()

    replies, connections = asyncio.run(scenario())
    assert replies[:5] == [f"value {n}".encode() for n in range(5)]
    assert isinstance(replies[5], NoScriptError)
    assert replies[6] is None
    assert len(connections) == 1  # seven concurrent commands, one connection, one pipeline


def test_a_lone_command_and_later_turns_are_sent_too(redis_url: str, redis_prefix: str) -> None:
    async def scenario() -> list[Any]:
        pipeline = AutoPipeline(redis.asyncio.Redis.from_url(redis_url))
        try:
            await pipeline.execute("SET", f"{redis_prefix}a", "1")
            first = await pipeline.execute("GET", f"{redis_prefix}a")
            await pipeline.execute("INCR", f"{redis_prefix}a")
            return [first, await pipeline.execute("GET", f"{redis_prefix}a")]
        finally:
            await pipeline.aclose()

    assert asyncio.run(scenario()) == [b"1", b"2"]


def test_a_caller_that_goes_away_does_not_disturb_the_others(
    redis_url: str, redis_prefix: str, raw_redis: redis.Redis
) -> None:
    raw_redis.set(f"{redis_prefix}a", "kept")

    async def scenario() -> tuple[bool, bytes]:
        pipeline = AutoPipeline(redis.asyncio.Redis.from_url(redis_url))
        try:
            gone = pipeline.execute("GET", f"{redis_prefix}a")
            kept = pipeline.execute("GET", f"{redis_prefix}a")
            gone.cancel()  # a request whose client disconnected
            return gone.cancelled(), await kept
        finally:
            await pipeline.aclose()

    assert asyncio.run(scenario()) == (True, b"kept")


def test_a_connection_that_fails_fails_every_caller_of_the_batch(closed_port: int) -> None:
    async def scenario() -> list[Any]:
        client = redis.asyncio.Redis(port=closed_port, socket_connect_timeout=0.5)
        pipeline = AutoPipeline(client)
        try:
            return await asyncio.gather(
                *(pipeline.execute("GET", f"k{n}") for n in range(3)), return_exceptions=True
            )
        finally:
            await pipeline.aclose()

    replies = asyncio.run(scenario())
    assert len(replies) == 3
    assert all(isinstance(reply, RedisError) for reply in replies)


@pytest.mark.parametrize("turns", [1, 3])
def test_replies_follow_their_commands_over_many_callers(
    redis_url: str, redis_prefix: str, raw_redis: redis.Redis, turns: int
) -> None:
    raw_redis.mset({f"{redis_prefix}{n}": n for n in range(100)})

    async def scenario() -> list[Any]:
        pipeline = AutoPipeline(redis.asyncio.Redis.from_url(redis_url))

        async def read(n: int) -> Any:
            for _ in range(n % turns):  # some callers join a later turn
                await asyncio.sleep(0)
            return await pipeline.execute("GET", f"{redis_prefix}{n}")

        try:
            return await asyncio.gather(*(read(n) for n in range(100)))
        finally:
            await pipeline.aclose()

    assert asyncio.run(scenario()) == [str(n).encode() for n in range(100)]
