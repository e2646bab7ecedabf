"""cspulse workers on Redis with Sentinel: the master is SIGKILLed under load.

Two ``cspulse worker`` processes of one group (``CSPULSE_REDIS_MODE=sentinel``)
consume from the real broker while events are published; the master is
killed mid-stream, the Sentinels promote the replica, the workers' clients
ask the Sentinels for the new master and carry on. Whatever the replica had
not received is re-read from Kafka (the applied-offset check in
``streams/app.py``), so every metric equals the reference.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregators.connection import RedisOptions, sync_client
from tests import reference
from tests.compare import mismatches
from tests.harness import (
    MetricKey,
    Publisher,
    Stack,
    WorkerProcess,
    last_offsets,
    scrape,
    wait_applied,
    wait_progress,
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
    options = RedisOptions(url=sentinel.url, mode="sentinel", master_name=sentinel.master_name)
    client = sync_client(options)
    publisher = Publisher.in_parts(stack.bootstrap, messages, 8)
    publisher.start()
    wait_progress(client, _partitions(prefix))
    sentinel.master.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    sentinel.wait_master(sentinel.replica.port)
    print(f"replica promoted {time.monotonic() - killed_at:.1f}s after the SIGKILL")
    wait_applied(client, last_offsets(publisher.finish()), timeout=60)
    t = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
    expected = reference.compute(scenario.valid, t)
    retried = sum(_retries(scrape(w.port)) for w in workers)
    print(f"applies retried: {retried}; re-reads after Redis went back: {_rewinds(workers)}")
    assert retried > 0, "the failover happened while the workers were applying"
    for worker in workers:
        problems = mismatches(scrape(worker.port), expected)
        assert not problems, "\n".join(problems[:40])
    for worker in workers:
        assert worker.stop() == 0, worker.tail()


def _partitions(prefix: str) -> list[tuple[str, int]]:
    return [(prefix + t, p) for t in ("tickets", "surveys", "logins", "billing") for p in (0, 1)]


def _rewinds(workers: list[WorkerProcess]) -> int:
    """How often the workers saw Redis's applied offset go back (the replica had not
    received the last applies) and re-read: 0 when the replica had everything."""
    return sum(w.tail(100_000).count("Redis went back in time") for w in workers)


def _retries(scraped: dict[MetricKey, float]) -> float:
    return sum(v for (name, _), v in scraped.items() if name == "cs_redis_retries_total")
