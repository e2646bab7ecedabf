"""The processor against a real Redis that misbehaves: refusals, lost replies, lost data.

Every case is a real server condition (a full memory, a read-only replica, a
busy script, a connection cut after the command ran, a key deleted), and
each ends by checking the numbers the readers would serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from aggregators import keys
from aggregators.clock import Clock
from aggregators.facts import AccountFacts
from aggregators.health_index import SCORES, USAGE, account_key, mirror_facts
from aggregators.reader import Reader
from aggregators.store import APPLY_LUA
from streams.demo.embedded import free_port, start_redis
from streams.processor import Gap, Processor, RawMessage
from tests.processor.conftest import Rig
from tests.scenarios import event

T0 = time.time() - 3600


def opened(n: int, account: str = "acme", start: int = 0) -> list[RawMessage]:
    """``n`` ticket.opened messages at offsets ``start``.. (one ticket each)."""
    return [
        RawMessage(
            start + i,
            account.encode(),
            orjson.dumps(event("ticket.opened", T0 + i, account, ticket_id=f"T{start + i}")),
        )
        for i in range(n)
    ]


def open_tickets(rig: Rig) -> float:
    reader = Reader(rig.client(), rig.settings.metric_config(), Clock("watermark"))
    return reader.read().snapshot.gauges.get("tickets_open", 0.0)


def applied(rig: Rig, topic: str = "tickets", partition: int = 0) -> int:
    raw = rig.client().hget(
        keys.meta(keys.partition_tag(rig.settings.topic(topic), partition)), "offset"
    )
    return int(raw) if raw is not None else -1


def facts_of(rig: Rig, account: str) -> AccountFacts:
    """The account's health mirror, as the board and the at-risk list read it."""
    return mirror_facts(rig.client().hgetall(account_key(account)))


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_redelivered_batch_is_applied_once(rig: Rig) -> None:
    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "tickets", opened(3)) == 2
        assert await rig.process(processor, "tickets", opened(3)) == 2
        assert await rig.process(processor, "tickets", opened(5)) == 4

    run(scenario)
    assert open_tickets(rig) == 5
    assert rig.box.letters == []


def test_batch_starting_past_redis_offset_is_reread(rig: Rig) -> None:
    """Redis went back in time: the batch in hand is dropped and the caller told where to resume."""

    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "tickets", opened(3)) == 2
        later = opened(2, start=5)
        assert await rig.process(processor, "tickets", later) == Gap(3)
        assert open_tickets(rig) == 3, "the batch past the gap must not be applied"
        assert await rig.process(processor, "tickets", opened(4, start=3)) == 6
        # re-read and still no offsets 3..4 in the log (retention, compaction): accepted
        assert await rig.process(processor, "tickets", opened(2, start=9)) == Gap(7)
        assert await rig.process(processor, "tickets", opened(2, start=9)) == 10

    run(scenario)
    assert open_tickets(rig) == 9
    assert applied(rig) == 10


def _refused_then_restored(
    rig: Rig, refuse: Callable[[redis.Redis], None], restore: Callable[[redis.Redis], None]
) -> None:
    """Process a batch while Redis refuses writes; restore after a second; nothing dead-lettered."""
    control = rig.client()
    processor = rig.processor()

    async def scenario() -> None:
        assert await rig.process(processor, "tickets", opened(1, start=0)) == 0
        refuse(control)
        task = asyncio.create_task(rig.process(processor, "tickets", opened(4, start=1)))
        await asyncio.sleep(1.5)
        assert not task.done(), "the batch must wait while Redis refuses writes"
        restore(control)
        assert await asyncio.wait_for(task, 30) == 4

    run(scenario)
    assert rig.box.letters == [], "a temporary refusal is not a poison message"
    assert open_tickets(rig) == 5


def test_out_of_memory_refusal_is_waited_out(rig: Rig) -> None:
    _refused_then_restored(
        rig,
        lambda r: r.config_set("maxmemory", "1"),
        lambda r: r.config_set("maxmemory", "0"),
    )


def test_read_only_replica_is_waited_out(rig: Rig) -> None:
    nowhere = free_port()
    _refused_then_restored(
        rig,
        lambda r: r.execute_command("REPLICAOF", "127.0.0.1", str(nowhere)),
        lambda r: r.execute_command("REPLICAOF", "NO", "ONE"),
    )


def test_busy_script_is_waited_out(rig: Rig) -> None:
    blocker = rig.client()
    rig.client().config_set("lua-time-limit", "100")

    def busy(_r: redis.Redis) -> None:
        def spin() -> None:
            with contextlib.suppress(redis.exceptions.RedisError):  # killed below
                blocker.eval("while true do end", 0)

        threading.Thread(target=spin, daemon=True).start()
        time.sleep(0.3)

    def kill(r: redis.Redis) -> None:
        r.script_kill()

    _refused_then_restored(rig, busy, kill)


class CuttingProxy:
    """A TCP proxy to Redis that cuts the connection instead of returning one apply's reply."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.sha = hashlib.sha1(APPLY_LUA.encode()).hexdigest().encode()
        self.armed = True
        self.cut = 0

    async def start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        dropping = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self.armed and self.sha in data:
                    self.armed = False
                    dropping.set()
                up_w.write(data)
                await up_w.drain()

        async def downstream() -> None:
            while data := await up_r.read(65536):
                if dropping.is_set():
                    self.cut += 1
                    client_w.close()
                    up_w.close()
                    return
                client_w.write(data)
                await client_w.drain()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)
        client_w.close()
        up_w.close()


def test_lost_apply_reply_still_mirrors_the_health_facts(rig: Rig) -> None:
    rig.client().script_load(APPLY_LUA)
    proxy = CuttingProxy(rig.redis_process.port)
    started = event(
        "subscription.started",
        T0,
        "acme",
        subscription_id="S1",
        plan="team",
        mrr_cents=9900,
        currency="USD",
    )

    async def scenario() -> None:
        server = await proxy.start()
        processor = rig.processor(f"redis://127.0.0.1:{proxy.port}/0")
        message = RawMessage(0, b"acme", orjson.dumps(started))
        assert await rig.process(processor, "billing", [message]) == 0
        server.close()

    run(scenario)
    assert proxy.cut == 1, "the apply's reply was cut once"
    assert applied(rig, "billing") == 0
    assert facts_of(rig, "acme").billing.subscribed == "team"


def test_registry_lost_with_redis_data_comes_back(rig: Rig) -> None:
    async def scenario() -> None:
        processor = rig.processor()
        await rig.process(processor, "tickets", opened(2))
        rig.client().delete(keys.REGISTRY)
        await rig.process(processor, "tickets", opened(1, start=2))

    run(scenario)
    registry = rig.client().hgetall(keys.REGISTRY)
    assert registry == {keys.partition_tag(rig.settings.topic("tickets"), 0).encode(): b"tickets"}
    assert open_tickets(rig) == 3


class Died(BaseException):
    """The worker process dying at that point (SIGKILL): nothing after it runs."""


def die_after_apply(processor: Processor, topic: str) -> None:
    """Make the partition's atomic apply succeed, then kill the worker before anything else."""
    store = processor.store(topic, 0)
    real_apply = store.apply

    async def apply_then_die(*args: Any) -> bool:
        await real_apply(*args)
        raise Died

    store.apply = apply_then_die  # type: ignore[method-assign]


def test_worker_dying_between_apply_and_health_mirror_loses_no_account(rig: Rig) -> None:
    """The next owner of the partitions mirrors what the dead worker applied."""
    subscribed = event(
        "subscription.started",
        T0,
        "acme",
        subscription_id="S1",
        plan="team",
        mrr_cents=9900,
        currency="USD",
    )
    login = event("session.started", T0 + 60, "acme", session_id="S1", user_id="u1", platform="web")
    batches = {rig.settings.topic("billing"): subscribed, rig.settings.topic("logins"): login}

    async def scenario() -> None:
        doomed = rig.processor()
        for topic, applied_event in batches.items():
            die_after_apply(doomed, topic)
            message = RawMessage(0, b"acme", orjson.dumps(applied_event))
            with contextlib.suppress(Died):
                await doomed.process(topic, 0, [message])
        successor = rig.processor()
        for topic in batches:
            await successor.finish_mirrors(topic, 0)

    run(scenario)
    client = rig.client()
    assert applied(rig, "billing") == 0 and applied(rig, "logins") == 0
    assert facts_of(rig, "acme").billing.subscribed == "team"
    used = client.zscore(USAGE, "acme")
    assert used == pytest.approx(T0 + 60, abs=0.001), "paying and active: in the usage index"
    for topic in batches:
        assert not client.exists(keys.mirror_due(keys.partition_tag(topic, 0)))


def test_mirrored_accounts_are_forgotten_by_their_index_write(rig: Rig) -> None:
    """A batch's accounts are due from its apply until the index script that scores them
    forgets them, checking this server holds their mirror: nothing is left listed."""
    topic = rig.settings.topic("tickets")
    tag = keys.partition_tag(topic, 0)
    client = rig.client()
    due: list[list[tuple[bytes, float]]] = []

    async def scenario() -> None:
        processor = rig.processor()
        await rig.process(processor, "tickets", opened(3))
        due.append(client.zrange(keys.mirror_due(tag), 0, -1, withscores=True))
        await rig.process(processor, "tickets", opened(2, account="globex", start=3))
        due.append(client.zrange(keys.mirror_due(tag), 0, -1, withscores=True))

    run(scenario)
    assert due == [[], []]
    assert client.zscore(SCORES, "acme") is not None
    assert client.zscore(SCORES, "globex") is not None


def test_a_successor_mirrors_again_what_was_mirrored_but_not_yet_forgotten(rig: Rig) -> None:
    """A worker that stops between the mirror and the index leaves the accounts due (here
    listed again as it would have left them): the next owner mirrors them again (full
    values: the same mirror), indexes and forgets them. An account listed whose facts
    expired has nothing to mirror and is forgotten too."""
    topic = rig.settings.topic("tickets")
    tag = keys.partition_tag(topic, 0)
    client = rig.client()

    async def scenario() -> None:
        await rig.process(rig.processor(), "tickets", opened(3))
        before = client.hgetall(account_key("acme"))
        client.zadd(keys.mirror_due(tag), {"acme": 2, "expired": 1})
        client.zrem(SCORES, "acme")
        await rig.processor().finish_mirrors(topic, 0)
        after = client.hgetall(account_key("acme"))
        before.pop(b"~version"), after.pop(b"~version")
        assert after == before

    run(scenario)
    assert not client.exists(keys.mirror_due(tag))
    assert client.zscore(SCORES, "acme") is not None
    assert facts_of(rig, "acme").tickets.open == 3


class MovingProxy:
    """A TCP proxy to Redis whose upstream can move, as a virtual IP moves to the promoted
    replica: moving cuts every open connection."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def move(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers += [client_w, up_w]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w), return_exceptions=True)


def _wait_until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_failover_to_a_replica_without_the_mirror_leaves_its_accounts_due(
    rig: Rig, tmp_path: Path
) -> None:
    """The replica gets a batch's apply, then is promoted before the batch's mirror and
    index reach it; the worker's next batch goes to it. The batch's accounts must still be
    due there, so the worker mirrors them again (guarantees §6)."""
    topic = rig.settings.topic("tickets")
    tag = keys.partition_tag(topic, 0)
    (tmp_path / "replica").mkdir()
    replica = start_redis(tmp_path / "replica")
    promoted = redis.Redis(port=replica.port, socket_timeout=5)
    try:
        promoted.replicaof("127.0.0.1", rig.redis_process.port)
        _wait_until(lambda: promoted.info("replication")["master_link_status"] == "up", "sync")

        async def scenario() -> None:
            proxy = MovingProxy(rig.redis_process.port)
            server = await proxy.start()
            processor = rig.processor(f"redis://127.0.0.1:{proxy.port}/0")
            mirror_and_index = processor.health.update

            async def promote_first(*args: Any, **kwargs: Any) -> bool:
                if promoted.info("replication")["role"] != "master":
                    offset = keys.meta(tag)
                    _wait_until(lambda: promoted.hget(offset, "offset") == b"2", "the apply")
                    promoted.replicaof("no", "one")
                return await mirror_and_index(*args, **kwargs)

            processor.health.update = promote_first  # type: ignore[method-assign]
            await rig.process(processor, "tickets", opened(3))
            proxy.move(replica.port)
            await rig.process(processor, "tickets", opened(2, account="globex", start=3))
            await processor.finish_mirrors(topic, 0)
            server.close()

        run(scenario)
        assert mirror_facts(promoted.hgetall(account_key("acme"))).tickets.open == 3
        assert mirror_facts(promoted.hgetall(account_key("globex"))).tickets.open == 2
        assert promoted.zscore(SCORES, "acme") is not None
        assert not promoted.exists(keys.mirror_due(tag))
        assert not rig.client().exists(keys.mirror_due(tag)), "forgotten on the old master"
    finally:
        replica.stop()
