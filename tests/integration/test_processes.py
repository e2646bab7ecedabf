"""``cspulse worker --processes 2``: two consumers of one group on one host, one per core."""

from __future__ import annotations

import socket
import time

import pytest

from streams.demo.embedded import free_port
from tests import reference
from tests.compare import mismatches
from tests.harness import Stack, last_offsets, publish, scrape, wait_applied
from tests.integration.conftest import fresh_names
from tests.scenarios import standard

pytestmark = pytest.mark.slow


def two_free_ports() -> int:
    """A port p with p + 1 free too: process i serves /metrics on p + i."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports on loopback")


def test_two_processes_share_the_partitions_and_match_the_reference(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=21, accounts=30)
    port = two_free_ports()
    worker = stack.new_worker(prefix, group, CSPULSE_PROCESSES="2")
    worker.port = port
    worker.env["CSPULSE_METRICS_PORT"] = str(port)
    worker.start()
    published = publish(stack.bootstrap, [(prefix + t, k, v) for t, k, v in scenario.messages])
    wait_applied(stack.redis(), last_offsets(published), timeout=180)
    t = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
    expected = reference.compute(scenario.valid, t)
    first, second = scrape(worker.port), scrape(worker.port + 1)
    for scraped in (first, second):  # every process serves the same business numbers
        problems = mismatches(scraped, expected)
        assert not problems, "\n".join(problems[:40])
    applied = [
        sum(v for (name, _), v in scraped.items() if name == "cs_events_total")
        for scraped in (first, second)
    ]
    assert sum(applied) == len(scenario.valid), "each event applied by exactly one process"
    assert all(n > 0 for n in applied), f"both processes consumed: {applied}"
    assert worker.stop() == 0
