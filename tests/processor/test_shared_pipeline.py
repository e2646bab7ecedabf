"""Callers running in the same turn of the event loop share one pipeline to a real Redis,
and each still gets exactly what a pipeline of its own would give it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aggregators.shared_pipeline import SharedPipeline
from streams.demo.embedded import free_port
from tests.processor.conftest import Rig


class CountingConnection(Connection):
    """A real connection that counts the writes (round trips) of all such connections."""

    writes = 0

    async def _send_packed_command(self, command: Any) -> None:
        CountingConnection.writes += 1  # every write goes through it, the pipeline's too
        await super()._send_packed_command(command)


def _client(rig: Rig) -> Redis:
    pool = ConnectionPool(
        port=rig.redis_process.port, socket_timeout=5, connection_class=CountingConnection
    )
    return Redis(connection_pool=pool)


async def _connected(shared: SharedPipeline) -> None:
    """The pool's connection made (its handshake is writes too); the count starts after."""
    await shared.execute([("PING",)])
    CountingConnection.writes = 0


def test_concurrent_callers_share_one_pipeline_and_get_their_own_replies(rig: Rig) -> None:
    async def run() -> tuple[list[list[Any]], int]:
        client = _client(rig)
        shared = SharedPipeline(client)
        await _connected(shared)
        calls = [
            [("SET", f"k{i}", f"v{i}"), ("INCRBY", "total", i), ("GET", f"k{i}")]
            for i in range(1, 11)
        ]
        replies = await asyncio.gather(*(shared.execute(c) for c in calls))
        await client.aclose()
        return replies, CountingConnection.writes

    replies, writes = asyncio.run(run())
    assert writes == 1
    assert [r[2] for r in replies] == [f"v{i}".encode() for i in range(1, 11)]
    assert sorted(r[1] for r in replies) == sorted(_running_totals(range(1, 11)))
    assert rig.client().get("total") == b"55"


def _running_totals(steps: range) -> list[int]:
    totals, total = [], 0
    for step in steps:
        total += step
        totals.append(total)
    return totals


def test_callers_in_later_turns_get_pipelines_of_their_own(rig: Rig) -> None:
    async def run() -> int:
        client = _client(rig)
        shared = SharedPipeline(client)
        await _connected(shared)
        for i in range(3):
            assert await shared.execute([("SET", "k", str(i))]) == [b"OK"]
        await client.aclose()
        return CountingConnection.writes

    assert asyncio.run(run()) == 3


BUSY = """local t = redis.call('TIME')
local start = t[1] * 1e6 + t[2]
repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start >= tonumber(ARGV[1])
return 1"""
"""Keeps Redis busy for ARGV[1] microseconds."""


def test_a_caller_gets_its_replies_while_redis_still_runs_the_rest_of_the_write(
    rig: Rig,
) -> None:
    """So that a partition can fold while Redis applies another's batch."""

    async def run() -> tuple[float, float, int]:
        client = _client(rig)
        shared = SharedPipeline(client)
        await _connected(shared)
        answered: dict[str, float] = {}

        async def call(name: str, commands: list[tuple[Any, ...]]) -> None:
            await shared.execute(commands)
            answered[name] = time.monotonic()

        # the long value ends Redis's first read after the PING, whose reply it then sends
        await asyncio.gather(
            call("quick", [("PING",)]),
            call("slow", [("SET", "long", b"x" * 1_000_000), ("EVAL", BUSY, 0, 300_000)]),
        )
        await client.aclose()
        return answered["quick"], answered["slow"], CountingConnection.writes

    quick, slow, writes = asyncio.run(run())
    assert writes == 1
    assert slow - quick >= 0.2


def test_one_callers_error_is_its_own(rig: Rig) -> None:
    rig.client().set("text", "not a hash")

    async def run() -> tuple[BaseException | list[Any], ...]:
        client = _client(rig)
        shared = SharedPipeline(client)
        outcome = await asyncio.gather(
            shared.execute([("HGET", "text", "field"), ("SET", "after", "1")]),
            shared.execute([("SET", "other", "2"), ("GET", "other")]),
            shared.execute([("EVALSHA", "0" * 40, 0)]),
            return_exceptions=True,
        )
        await client.aclose()
        return tuple(outcome)

    wrong_type, fine, no_script = asyncio.run(run())
    assert isinstance(wrong_type, ResponseError) and "WRONGTYPE" in str(wrong_type)
    assert rig.client().get("after") == b"1"  # like a pipeline: the rest still ran
    assert fine == [b"OK", b"2"]
    assert isinstance(no_script, NoScriptError)


def test_scripts_redis_lost_are_loaded_again_and_the_commands_sent_once_more(
    rig: Rig,
) -> None:
    source = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    digest = rig.client().script_load(source)
    rig.client().script_flush()

    async def run() -> list[Any]:
        client = _client(rig)
        shared = SharedPipeline(client)
        replies = await shared.execute(
            [("EVALSHA", digest, 1, "counter", 5), ("EVALSHA", digest, 1, "counter", 7)],
            (source,),
        )
        await client.aclose()
        return replies

    assert asyncio.run(run()) == [5, 12]  # the first try ran nothing
    assert rig.client().get("counter") == b"12"


def test_a_command_the_client_cannot_send_fails_only_its_caller(rig: Rig) -> None:
    async def run() -> tuple[BaseException | list[Any], ...]:
        client = _client(rig)
        shared = SharedPipeline(client)
        outcome = await asyncio.gather(
            shared.execute([("SET", "fine", "1"), ("GET", "fine")]),
            shared.execute([("SET", "bad", {"a dict": "is no argument"})]),
            return_exceptions=True,
        )
        await client.aclose()
        return tuple(outcome)

    fine, bad = asyncio.run(run())
    assert fine == [b"OK", b"1"]
    assert isinstance(bad, DataError)
    assert rig.client().get("bad") is None


def test_a_lost_connection_reaches_every_caller() -> None:
    async def run() -> list[BaseException | list[Any]]:
        client = Redis(port=free_port(), socket_connect_timeout=1)
        shared = SharedPipeline(client)
        outcome = await asyncio.gather(
            shared.execute([("GET", "a")]), shared.execute([("GET", "b")]), return_exceptions=True
        )
        await client.aclose()
        return list(outcome)

    for outcome in asyncio.run(run()):
        assert isinstance(outcome, RedisConnectionError)


def test_a_cancelled_caller_leaves_the_others_their_replies(rig: Rig) -> None:
    async def run() -> list[Any]:
        client = _client(rig)
        shared = SharedPipeline(client)
        doomed = asyncio.create_task(shared.execute([("SET", "doomed", "1")]))
        kept = asyncio.create_task(shared.execute([("SET", "kept", "1"), ("GET", "kept")]))
        await asyncio.sleep(0)  # both queued
        doomed.cancel()
        replies = await kept
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await client.aclose()
        return replies

    assert asyncio.run(run()) == [b"OK", b"1"]


def test_a_redis_that_stops_answering_times_out_and_leaves_no_reply_behind(rig: Rig) -> None:
    """Replies withheld (``CLIENT PAUSE``): the exchange fails within the socket timeout,
    and the next one reads its own replies, not the late ones of the failed exchange."""

    async def run() -> tuple[float, list[Any]]:
        # no retries: the connection's retry policy would wait out the pause
        client = Redis(port=rig.redis_process.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        shared = SharedPipeline(client)
        assert await shared.execute([("ECHO", "warm")]) == [b"warm"]
        rig.client().execute_command("CLIENT", "PAUSE", 1500, "ALL")
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError, match="socket_timeout"):
            await shared.execute([("ECHO", "late-1"), ("ECHO", "late-2"), ("ECHO", "late-3")])
        waited = time.monotonic() - started
        await asyncio.sleep(1.5)  # the pause is over
        after = await shared.execute([("ECHO", "own-1"), ("ECHO", "own-2")])
        await client.aclose()
        return waited, after

    waited, after = asyncio.run(run())
    assert 0.4 < waited < 1.4
    assert after == [b"own-1", b"own-2"]
