"""cspulse on a real Redis Cluster (3 masters, 3 replicas) against a single Redis.

The same generated stream is applied through the real processor to the
cluster (redis-py ``RedisCluster`` from :mod:`aggregators.connection`) and to
the session's standalone Redis, whose numbers the reference tests check;
every sum, gauge and distinct count read from the cluster must equal the
standalone one. Every script and pipeline stays within one slot or is split
per slot by the client: a cross-slot command would fail here.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from aggregators import keys
from aggregators.clock import Clock
from aggregators.connection import RedisOptions, async_client, sync_client
from aggregators.reader import Reader
from aggregators.readout import Snapshot, compute
from streams.config import Settings
from streams.demo.world import EventGenerator, GeneratorConfig
from streams.processor import Processor, RawMessage
from tests import reference
from tests.cluster import Cluster, start_cluster
from tests.compare import assert_failover_recovered, mismatches
from tests.harness import (
    Publisher,
    Stack,
    WorkerProcess,
    applied_more,
    applied_offsets,
    last_offsets,
    publish,
    scrape,
    wait_applied,
    wait_progress,
    wait_ready,
)
from tests.integration.conftest import fresh_names
from tests.scenarios import SHARED_PLANS, SHARED_SIDES, Scenario, shared_users, standard

PARTITIONS = 3
FAMILIES = ("tickets", "surveys", "logins", "billing")
Batch = dict[tuple[str, int], list[RawMessage]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed (Debian: redis-tools, pulled in by redis-server)")
    started = start_cluster(Path(tmp_path_factory.mktemp("cluster")))
    yield started
    started.stop()


def _sent_before(value: bytes, horizon: float) -> bool:
    """Whether a generated message's event time is before ``horizon`` (invalid ones pass)."""
    try:
        when = orjson.loads(value)["time"]
        return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() < horizon
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return True


def _batches(settings: Settings, events: int, start: float) -> list[Batch]:
    """The generated stream as batches per topic-partition, every event well in the past.

    These tests apply the same batches twice, to the Cluster and later to a single
    Redis, and compare. An event more than 5 minutes ahead of the wall clock is invalid
    (events.md), so a stream reaching into the future would be a different input to
    each apply: the later one accepts the few events that came within 5 minutes in
    between, and when the hour has not turned they count in the hourly 7d and 30d
    windows (a heartbeat's gap: about 60 s of time in app). How far a stream of a
    given size reaches depends on the hour of the week (the world's daily cycle), so
    events later than 10 minutes ago are left out.
    """
    plans = tuple((f"plan-{i}", 1000 * (i + 1)) for i in range(5))
    gen = EventGenerator(GeneratorConfig(accounts=120, plans=plans), start, intensity=3.0)
    horizon = time.time() - 600
    stream = [m for m in gen.stream(events, step=5.0) if _sent_before(m.value, horizon)]
    offsets: dict[tuple[str, int], int] = {}
    batches: list[Batch] = [{}]
    for i, message in enumerate(stream):
        tp = (settings.topic(message.topic), sum(message.key or b"") % PARTITIONS)
        offsets[tp] = offsets.get(tp, -1) + 1
        batches[-1].setdefault(tp, []).append(RawMessage(offsets[tp], message.key, message.value))
        if i % 500 == 499:
            batches.append({})
    return batches


async def _apply(
    client: Any, settings: Settings, batches: list[Batch], clock: Clock | None = None
) -> None:
    async def no_dead_letters(*_: object) -> None:
        return None

    processor = Processor(
        client, settings.metric_config(), no_dead_letters, family_of=settings.family_of, clock=clock
    )
    for batch in batches:
        for (topic, partition), messages in batch.items():
            await processor.process(topic, partition, messages)


def _apply_to(
    client_factory: Any, settings: Settings, batches: list[Batch], clock: Clock | None = None
) -> None:
    async def run() -> None:
        client = client_factory()
        try:
            await _apply(client, settings, batches, clock)
        finally:
            await client.aclose()

    asyncio.run(run())


def _assert_same(got: Snapshot, want: Snapshot) -> None:
    assert got.sums.keys() == want.sums.keys()
    for window, fields in want.sums.items():
        assert got.sums[window] == pytest.approx(fields, rel=1e-9, abs=1e-6), window
    assert got.gauges == pytest.approx(want.gauges, rel=1e-9, abs=1e-6)
    assert got.distinct == want.distinct
    assert got.live_sessions == want.live_sessions


def _cluster_options(cluster: Cluster) -> RedisOptions:
    return RedisOptions(url=cluster.url, mode="cluster")


def test_cluster_numbers_equal_a_single_redis(
    stack: Stack, names: tuple[str, str], cluster: Cluster
) -> None:
    settings = Settings()
    batches = _batches(settings, 4000, time.time() - 3 * 3600)
    options = _cluster_options(cluster)
    sync_client(options).flushall()
    _apply_to(lambda: async_client(options), settings, batches)
    _apply_to(lambda: async_client(RedisOptions(url=stack.redis_url)), settings, batches)
    t = time.time()
    config = settings.metric_config()
    got = Reader(sync_client(options), config).read(now=t).snapshot
    want = Reader(stack.redis(), config).read(now=t).snapshot
    assert want.sums and want.distinct
    _assert_same(got, want)


def test_users_shared_by_accounts_on_two_masters_count_once(cluster: Cluster) -> None:
    """A user active in accounts whose partitions sit on different masters counts once,
    whole base and per plan: each partition's members are read within its own slot and
    united by the reader (no command spans the two)."""
    settings = Settings()
    options = RedisOptions(url=_alive_seeds(cluster), mode="cluster")
    client = sync_client(options)
    client.flushall()
    logins = settings.topic("logins")
    sides = _partitions_on_two_masters(cluster, logins)
    now = time.time() - 3600
    billing, sessions = shared_users(now)
    batches: list[Batch] = [{}, {}]  # billing first, in the partitions of its accounts
    for side, partition in enumerate(sides):
        for n, (topic, events) in enumerate(
            ((settings.topic("billing"), billing), (logins, sessions))
        ):
            mine = [e for e in events if SHARED_SIDES[e["data"]["account_id"]] == side]
            batches[n][(topic, partition)] = _raw(mine)
    watermark = Clock("watermark")  # read at the newest event, as the reference is
    _apply_to(lambda: async_client(options), settings, batches, watermark)
    config = settings.metric_config()
    snapshot = Reader(client, config, watermark).read().snapshot
    got = {(s.name, s.labels): s.value for s in compute(snapshot, config)}
    problems = mismatches(got, reference.compute([*billing, *sessions], now))
    counts = ("cs_active_users", "cs_active_accounts")
    have = {k: v for k, v in got.items() if k[0] in counts}
    for plan in ("team", "starter", "none"):
        on_plan = [e for e in sessions if SHARED_PLANS.get(e["data"]["account_id"], "none") == plan]
        want = {k: v for k, v in reference.compute(on_plan, now).items() if k[0] in counts}
        problems += [f"plan {plan}: {p}" for p in mismatches(have, want, plan)]
    assert not problems, "\n".join(problems)
    assert got[("cs_active_users", (("plan", "all"), ("window", "30d")))] == 5


def _partitions_on_two_masters(cluster: Cluster, topic: str) -> tuple[int, int]:
    """Two partitions of ``topic`` whose keys different masters serve."""
    client = cluster.client(cluster.masters()[0])
    owner = {port: _owned_slots(cluster, port) for port in cluster.masters()}
    found: dict[int, int] = {}
    for partition in range(64):
        key = keys.meta(keys.partition_tag(topic, partition))
        slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        port = next(p for p, slots in owner.items() if slot in slots)
        found.setdefault(port, partition)
        if len(found) == 2:
            first, second = found.values()
            return first, second
    raise AssertionError("every partition of the topic is on one master")


def _raw(events: list[dict[str, Any]]) -> list[RawMessage]:
    return [
        RawMessage(i, e["data"]["account_id"].encode(), orjson.dumps(e))
        for i, e in enumerate(events)
    ]


def test_master_sigkill_between_batches_loses_and_doubles_nothing(
    stack: Stack, names: tuple[str, str], cluster: Cluster
) -> None:
    """A master dies (SIGKILL) after its writes reached its replica; the replica is
    promoted, the client follows the new slot map, and the rest of the stream
    applies on top: the numbers equal a single Redis that saw no failure."""
    settings = Settings()
    batches = _batches(settings, 3000, time.time() - 3 * 3600)
    half = len(batches) // 2
    options = _cluster_options(cluster)
    sync_client(options).flushall()
    _apply_to(lambda: async_client(options), settings, batches[:half])
    time.sleep(1.5)  # replication is asynchronous: see docs/guarantees.md
    victim = next(n for n in cluster.nodes if n.port == cluster.masters()[0])
    victim.stop(signal.SIGKILL)
    cluster.wait_ok()
    _apply_to(lambda: async_client(options), settings, batches[half:])
    _apply_to(lambda: async_client(RedisOptions(url=stack.redis_url)), settings, batches)
    t = time.time()
    config = settings.metric_config()
    alive = RedisOptions(url=_alive_seeds(cluster), mode="cluster")
    got = Reader(sync_client(alive), config).read(now=t).snapshot
    want = Reader(stack.redis(), config).read(now=t).snapshot
    _assert_same(got, want)


def _alive_seeds(cluster: Cluster) -> str:
    return ",".join(f"redis://127.0.0.1:{n.port}" for n in cluster.nodes if n.proc.poll() is None)


def test_slot_migration_under_load_loses_and_doubles_nothing(
    stack: Stack, names: tuple[str, str], cluster: Cluster
) -> None:
    """``redis-cli --cluster reshard`` moves 4,000 slots (the partitions' among them)
    while batches apply: MOVED, ASK and TRYAGAIN are followed or retried, and no
    script runs on a half-moved slot (each declares a guard key that never exists)."""
    settings = Settings()
    batches = _batches(settings, 4000, time.time() - 3 * 3600)
    options = RedisOptions(url=_alive_seeds(cluster), mode="cluster")
    admin = sync_client(options)
    admin.flushall()
    source = _busiest_master(cluster, settings)
    target = next(p for p in cluster.masters() if p != source)
    reshard = subprocess.Popen(
        [
            shutil.which("redis-cli") or "redis-cli",
            "--cluster",
            "reshard",
            f"127.0.0.1:{source}",
            "--cluster-from",
            _node_id(cluster, source),
            "--cluster-to",
            _node_id(cluster, target),
            "--cluster-slots",
            "4000",
            "--cluster-yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _apply_to(lambda: async_client(options), settings, batches)
        assert reshard.wait(120) == 0, reshard.stderr.read() if reshard.stderr else ""
    finally:
        if reshard.poll() is None:
            reshard.kill()
    _apply_to(lambda: async_client(RedisOptions(url=stack.redis_url)), settings, batches)
    t = time.time()
    config = settings.metric_config()
    got = Reader(sync_client(options), config).read(now=t).snapshot
    want = Reader(stack.redis(), config).read(now=t).snapshot
    _assert_same(got, want)


def _node_id(cluster: Cluster, port: int) -> str:
    raw = cluster.client(port).execute_command("CLUSTER", "MYID")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _busiest_master(cluster: Cluster, settings: Settings) -> int:
    """The master serving the most of this test's partitions."""
    client = cluster.client(cluster.masters()[0])
    owners: dict[int, int] = {}
    slots = {
        int(client.execute_command("CLUSTER", "KEYSLOT", keys.meta(keys.partition_tag(t, p))))
        for t in (settings.topic(f) for f in ("tickets", "surveys", "logins", "billing"))
        for p in range(PARTITIONS)
    }
    for port in cluster.masters():
        owned = _owned_slots(cluster, port)
        owners[port] = len(slots & owned)
    return max(owners, key=lambda p: owners[p])


def _owned_slots(cluster: Cluster, port: int) -> set[int]:
    owned: set[int] = set()
    for entry in cluster.client(port).execute_command("CLUSTER", "SLOTS"):
        start, end, master = int(entry[0]), int(entry[1]), entry[2]
        if int(master[1]) == port:
            owned.update(range(start, end + 1))
    return owned


@dataclass
class ClusterRun:
    """Three ``cspulse worker`` processes of one group on an emptied cluster, and the
    scenario they are to read (messages already prefixed, not yet published)."""

    prefix: str
    group: str
    options: RedisOptions
    env: dict[str, str]
    scenario: Scenario
    messages: list[tuple[str, bytes | None, bytes]]
    workers: list[WorkerProcess]


def _three_cluster_workers(
    stack: Stack, cluster: Cluster, seed: int, accounts: int, **extra_env: str
) -> ClusterRun:
    prefix, group = fresh_names(stack)
    seeds = _alive_seeds(cluster)
    options = RedisOptions(url=seeds, mode="cluster")
    sync_client(options).flushall()
    scenario = standard(time.time(), seed=seed, accounts=accounts)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    env = {"CSPULSE_REDIS_URL": seeds, "CSPULSE_REDIS_MODE": "cluster", **extra_env}
    workers = [stack.new_worker(prefix, group, **env).start() for _ in range(3)]
    return ClusterRun(prefix, group, options, env, scenario, messages, workers)


def test_three_workers_on_the_cluster_match_the_reference_through_a_rolling_restart(
    stack: Stack, cluster: Cluster
) -> None:
    """Three ``cspulse worker`` processes of one group on the cluster; while events are
    published each worker is replaced in turn (a new process, then SIGTERM to the old
    one), so partitions move under load. Every metric equals the reference."""
    run = _three_cluster_workers(stack, cluster, 31, 30, CSPULSE_SESSION_TIMEOUT="6")
    prefix, group, options, env = run.prefix, run.group, run.options, run.env
    scenario, messages, workers = run.scenario, run.messages, run.workers
    size = -(-len(messages) // 4)
    parts = [messages[i : i + size] for i in range(0, len(messages), size)]
    published = publish(stack.bootstrap, parts[0])
    for n, part in enumerate(parts[1:]):
        # a rolling deploy with surge: the new worker is ready before the old one stops,
        # so one rebalance happens at a time
        replacement = stack.new_worker(prefix, group, **env).start()
        wait_ready([*workers, replacement], timeout=120)
        assert workers[n].stop() == 0, workers[n].tail()
        workers[n] = replacement
        published += publish(stack.bootstrap, part)
    wait_applied(sync_client(options), last_offsets(published), timeout=180)
    t = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
    expected = reference.compute(scenario.valid, t)
    for worker in workers:
        problems = mismatches(scrape(worker.port), expected)
        assert not problems, "\n".join(problems[:40])
    for worker in workers:
        worker.stop()


def test_master_sigkill_under_load_through_workers_matches_the_reference(
    stack: Stack, cluster: Cluster
) -> None:
    """Three ``cspulse worker`` processes consume while events are published; the master
    serving most of their partitions is SIGKILLed mid-stream, its replica cut off just
    before so that it really lacks the last applies. The replica is promoted, the
    workers' scripts on its slots fail until the slot map moves and are retried, and
    what the replica lacked is re-read from Kafka: every metric equals the reference."""
    run = _three_cluster_workers(stack, cluster, 37, 40)
    prefix, options, scenario, workers = run.prefix, run.options, run.scenario, run.workers
    wait_ready(workers)
    partitions = [(prefix + t, p) for t in FAMILIES for p in range(2)]
    victim_port = _master_of_most(cluster, partitions)
    publisher = Publisher.in_parts(stack.bootstrap, run.messages, 8)
    publisher.start()
    wait_progress(sync_client(options), partitions)
    lost = _lose_the_last_applies(cluster, victim_port, partitions)
    assert lost > 0, "the replica had received every apply: nothing was lost to re-read"
    cluster.wait_failover(victim_port)
    alive = RedisOptions(url=_alive_seeds(cluster), mode="cluster")
    wait_applied(sync_client(alive), last_offsets(publisher.finish()), timeout=90)
    # The usage index (cs:{health}:usage) sits in its own slot: when the failover loses
    # its last writes but not the batches' (another shard), nothing re-reads them
    # (docs/guarantees.md §6), so the usage ratio is not part of this guarantee.
    assert_failover_recovered(workers, scenario, lost, frozenset({"cs_product_usage_ratio"}))


def _master_of_most(cluster: Cluster, partitions: list[tuple[str, int]]) -> int:
    """Of the masters whose replica can take over, the one serving most of ``partitions``."""
    client = cluster.client(cluster.masters()[0])
    slots = {
        int(client.execute_command("CLUSTER", "KEYSLOT", keys.meta(keys.partition_tag(t, p))))
        for t, p in partitions
    }
    candidates = cluster.failover_ready_masters()
    assert candidates, "no master with a live replica is left"
    return max(candidates, key=lambda port: len(slots & _owned_slots(cluster, port)))


def _lose_the_last_applies(cluster: Cluster, victim: int, partitions: list[tuple[str, int]]) -> int:
    """Detach the victim's replica, let the workers apply more on the victim alone, then
    SIGKILL it. Returns how many offsets of its partitions the replica is behind."""
    mine = [tp for tp in partitions if _slot_of(cluster, tp) in _owned_slots(cluster, victim)]
    master = cluster.client(victim)
    replica = cluster.replica_of(victim)
    cluster.detach(replica, victim)
    try:
        last = applied_more(master, mine, "the victim")  # beyond what the replica got
        next(n for n in cluster.nodes if n.port == victim).stop(signal.SIGKILL)
    finally:
        cluster.resume(replica)
    reader = redis.Redis(port=replica.port, socket_timeout=5, single_connection_client=True)
    reader.execute_command("READONLY")  # a cluster replica answers reads only after this
    kept = applied_offsets(reader, mine)
    return sum(max(0, last[tp] - kept[tp]) for tp in mine)


def _slot_of(cluster: Cluster, tp: tuple[str, int]) -> int:
    client = cluster.client(cluster.masters()[0])
    key = keys.meta(keys.partition_tag(*tp))
    return int(client.execute_command("CLUSTER", "KEYSLOT", key))
