"""Commands that concurrent partitions send in the same turn of the event loop share one
pipeline: one write and one read for all of them, not one round trip each.

Why: a worker applies a batch's partitions concurrently, and each partition's
load, apply and health mirror is a round trip whose fixed cost (a system call
each way, a connection from the pool, a timeout, a task wake-up, and the same
again in Redis) is paid per call, not per byte. At a steady rate, with many
partitions and few events each, that fixed cost is most of the work. This is
what ioredis calls auto-pipelining. Nothing waits for a batch to fill: the
pipeline goes out as soon as the tasks that were ready have queued their
commands. Each caller gets its own replies (as Redis sends them: none of
redis-py's per-command conversions), or the first error among them, as from
a pipeline of its own; a connection error reaches every caller, and
any other failure of the whole pipeline is sorted out by sending each
caller's commands again on their own.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from hiredis import pack_command
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[Any, ...]
"""A command by name and arguments, e.g. ``("HMGET", key, field)``."""

_Queued = tuple[Sequence[Command], "asyncio.Future[list[Any]]"]
"""One caller's commands and the future its replies go to."""


class SharedPipeline:
    """Joins the commands of callers that run in the same turn of the event loop."""

    def __init__(self, redis: Redis | RedisCluster) -> None:
        self.redis = redis
        self._queued: list[_Queued] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, commands: Sequence[Command], scripts: Sequence[str] = ()) -> list[Any]:
        """The replies to ``commands``, in order; raises the first error among them.

        ``scripts``: the Lua sources the commands run by digest (``EVALSHA``). When Redis
        lost them (a restart, ``SCRIPT FLUSH``) they are loaded and the commands sent once
        more; nothing is checked before, so the usual call is one round trip."""
        try:
            return await self._queue(commands)
        except NoScriptError:
            if not scripts:
                raise
            for source in scripts:
                await self.redis.script_load(source)
            return await self._queue(commands)

    async def _queue(self, commands: Sequence[Command]) -> list[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._send_queued)
        self._queued.append((commands, future))
        return await future

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        task = asyncio.create_task(self._send(queued))
        self._sending.add(task)  # a task nothing refers to may be collected mid-flight
        task.add_done_callback(self._sending.discard)

    async def _send(self, queued: list[_Queued]) -> None:
        try:
            await self._round_trip(queued)
        except asyncio.CancelledError:
            for _commands, future in queued:
                future.cancel()
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            for _commands, future in queued:  # the connection: every caller left sees it
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:
            waiting = [one for one in queued if not one[1].done()]
            if len(waiting) == 1:
                waiting[0][1].set_exception(exc)
                return
            # not the connection (a command the client cannot pack, a reply it cannot
            # parse): each caller alone, so the error reaches only its own; sending a
            # command again is safe (reads, idempotent writes, fenced applies)
            for one in waiting:
                await self._send([one])

    async def _round_trip(self, queued: list[_Queued]) -> None:
        """Send every caller's commands at once; each caller gets its replies, or the
        error Redis answered one of them with, as soon as they are read.

        Handing each caller its replies as they come, not when the last is read,
        lets a partition fold its batch while Redis still runs the commands of the
        others that shared the write: Python and Redis work side by side on the two
        cores instead of taking turns (``bench.hotpath``, docs/benchmarks.md).

        Outside Cluster the commands are packed by hiredis in one call each and
        written on a connection of the client's pool, and the replies read off
        it: what redis-py's pipeline does, without its per-argument encoding
        and per-reply callbacks (the commands sent here need none), about 8 % of
        the CPU per event at a steady rate's batch sizes. Connection errors
        are retried as the pipeline retries them (the connection's own policy),
        for the callers still waiting.
        """
        if isinstance(self.redis, RedisCluster):  # the cluster pipeline routes by slot
            pipe = self.redis.pipeline(transaction=False)
            for commands, _future in queued:
                for command in commands:
                    pipe.execute_command(*command)
            replies = await pipe.execute(raise_on_error=False)
            at = 0
            for commands, future in queued:
                _deliver(future, replies[at : at + len(commands)])
                at += len(commands)
            return
        pool = self.redis.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.retry.call_with_retry(
                lambda: _exchange(connection, [one for one in queued if not one[1].done()]),
                lambda _error: connection.disconnect(),
            )
        finally:
            await pool.release(connection)


def _deliver(future: asyncio.Future[list[Any]], replies: list[Any]) -> None:
    """A caller's replies, or the first error among them (nothing if it was cancelled)."""
    if future.done():
        return
    error = next((r for r in replies if isinstance(r, Exception)), None)
    if error is None:
        future.set_result(replies)
    else:
        future.set_exception(error)


async def _exchange(connection: Any, queued: list[_Queued]) -> None:
    """Write the packed commands and hand each caller its replies, under one deadline.

    One ``socket_timeout`` for the whole exchange, not one per reply: redis-py's
    ``read_response`` and ``send_packed_command`` each arm a timer of their own
    (``send_packed_command`` also wraps the write in a task): about a tenth of a
    small partition batch's CPU (``bench.partitions``, docs/benchmarks.md). The
    write is redis-py's own, without that wrapper."""
    if not queued:
        return
    try:
        packed = b"".join(pack_command(c) for commands, _future in queued for c in commands)
    except TypeError as exc:  # an argument that is no text, bytes or number: as redis-py says
        raise DataError(str(exc)) from exc
    if not connection.is_connected:
        await connection.connect()
    await connection.check_health()
    try:
        async with asyncio.timeout(connection.socket_timeout):
            await connection._send_packed_command((packed,))
            for commands, future in queued:
                replies: list[Any] = []
                for _command in commands:
                    try:
                        replies.append(await connection.read_response(timeout=math.inf))
                    except ResponseError as error:
                        replies.append(error)
                _deliver(future, replies)
    except BaseException as exc:
        # replies left unread on the socket would reach the connection's next user
        await connection.disconnect(nowait=True)
        if isinstance(exc, TimeoutError):
            raise RedisTimeoutError(
                f"Redis did not answer {sum(len(c) for c, _f in queued)} command(s) within "
                f"{connection.socket_timeout} s (socket_timeout, CSPULSE_REDIS_SOCKET_TIMEOUT); "
                "the batch is retried as in an outage"
            ) from exc
        if isinstance(exc, OSError):
            raise RedisConnectionError(f"writing to or reading from Redis failed: {exc}") from exc
        raise
