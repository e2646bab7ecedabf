"""cspulse workers on Redis with Sentinel: the master is SIGKILLed under load.

Two ``cspulse worker`` processes of one group (``CSPULSE_REDIS_MODE=sentinel``)
consume from the real broker while events are published; the master is
killed mid-stream, the Sentinels promote the replica, the workers' clients
ask the Sentinels for the new master and carry on. The replica is cut off
just before the kill, so it really lacks the master's last applies: Redis
goes back in time, the workers re-read those events from Kafka (resuming at
Redis's offset + 1), and every metric equals the reference.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from aggregators.connection import RedisOptions, sync_client
from tests.compare import assert_failover_recovered
from tests.harness import (
    Publisher,
    Stack,
    applied_more,
    applied_offsets,
    last_offsets,
    wait_applied,
    wait_progress,
    wait_ready,
)
from tests.integration.conftest import fresh_names
from tests.scenarios import standard
from tests.sentinel import SentinelSetup, start_sentinel_setup

pytestmark = pytest.mark.slow


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = start_sentinel_setup(tmp_path)
    yield setup
    setup.stop()


def test_master_sigkill_under_load_with_sentinel_matches_the_reference(
    stack: Stack, sentinel: SentinelSetup
) -> None:
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=41, accounts=40)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    env = {
        "CSPULSE_REDIS_URL": sentinel.url,
        "CSPULSE_REDIS_MODE": "sentinel",
        "CSPULSE_REDIS_MASTER": sentinel.master_name,
        "CSPULSE_SESSION_TIMEOUT": "6",
    }
    workers = [stack.new_worker(prefix, group, **env).start() for _ in range(2)]
    wait_ready(workers)
    options = RedisOptions(url=sentinel.url, mode="sentinel", master_name=sentinel.master_name)
    client = sync_client(options)
    publisher = Publisher.in_parts(stack.bootstrap, messages, 8)
    publisher.start()
    wait_progress(client, _partitions(prefix))
    lost = _lose_the_last_applies(sentinel, _partitions(prefix))
    killed_at = time.monotonic()
    assert lost > 0, "the replica had received every apply: nothing was lost to re-read"
    sentinel.wait_master(sentinel.replica.port)
    print(f"replica promoted {time.monotonic() - killed_at:.1f}s after the SIGKILL")
    wait_applied(client, last_offsets(publisher.finish()), timeout=60)
    assert_failover_recovered(workers, scenario, lost)


def _partitions(prefix: str) -> list[tuple[str, int]]:
    return [(prefix + t, p) for t in ("tickets", "surveys", "logins", "billing") for p in (0, 1)]


def _lose_the_last_applies(sentinel: SentinelSetup, partitions: list[tuple[str, int]]) -> int:
    """Detach the replica, let the workers apply more on the master alone, then SIGKILL
    the master: the replica the Sentinels promote lacks those applies. Returns how
    many offsets the replica is behind the master's last known state, summed."""
    master = redis.Redis(port=sentinel.master.port, socket_timeout=2)
    sentinel.detach_replica()
    try:
        last = applied_more(master, partitions, "the master")  # beyond what the replica got
        sentinel.master.stop(signal.SIGKILL)
    finally:
        sentinel.resume_replica()
    kept = applied_offsets(redis.Redis(port=sentinel.replica.port, socket_timeout=5), partitions)
    return sum(max(0, last[tp] - kept[tp]) for tp in partitions)
