"""Faults lose nothing and double-count nothing: each test ends equal to the reference.

Real processes only: the worker is ``cspulse worker`` in a subprocess, killed
with SIGKILL; Redis is a real server stopped and restarted on its AOF; the
broker is Tansu. Slow by nature (worker restarts, group rebalances).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from streams.demo.embedded import free_port, start_redis
from tests import reference
from tests.compare import mismatches
from tests.harness import (
    Published,
    Stack,
    WorkerProcess,
    consume_all,
    http_status,
    last_offsets,
    publish,
    scrape,
    wait_applied,
)
from tests.integration.conftest import fresh_names
from tests.scenarios import Scenario, event, standard

pytestmark = pytest.mark.slow

FAST_GROUP = {"CSPULSE_SESSION_TIMEOUT": "6"}
"""A killed worker's partitions move after 6 s instead of 30 s."""


def expected_metrics(scenario: Scenario) -> dict[Any, float]:
    t = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
    return reference.compute(scenario.valid, t)


def chunks(items: list[Any], n: int) -> list[list[Any]]:
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def assert_matches_reference(port: int, scenario: Scenario) -> None:
    problems = mismatches(scrape(port), expected_metrics(scenario))
    assert not problems, "\n".join(problems[:40])


def assert_dead_letters_complete(
    stack: Stack, prefix: str, scenario: Scenario, published: list[Published]
) -> None:
    """Every rejected message is dead-lettered (at least once: redelivery may repeat one)."""
    want = len(scenario.invalid) + scenario.late
    records = consume_all(stack.bootstrap, prefix + "deadletter", want)
    sources = {
        tuple(
            v.decode()
            for k, v in r.headers
            if k in ("cs-source-topic", "cs-source-partition", "cs-source-offset")
        )
        for r in records
    }
    assert len(sources) == want
    print(
        f"published={len(published)} valid={len(scenario.valid)} dead-lettered={want} "
        f"dead-letter records={len(records)} duplicates={scenario.duplicates}"
    )


def start_worker(
    stack: Stack, prefix: str, group: str, module: str = "streams", **extra: str
) -> WorkerProcess:
    return stack.new_worker(prefix, group, module, **{**FAST_GROUP, **extra}).start()


FAULTY = "tests.faulty_worker"
"""The worker with families that fail on the events named (:mod:`tests.faults`)."""


def test_sigkill_at_random_points_loses_and_doubles_nothing(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=11, accounts=30)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    rng = random.Random(1234)
    worker = start_worker(stack, prefix, group)
    published: list[Published] = []
    for part in chunks(messages, 4):
        published += publish(stack.bootstrap, part)
        time.sleep(rng.uniform(0.2, 3.0))
        worker.kill()
        worker = start_worker(stack, prefix, group)
    wait_applied(stack.redis(), last_offsets(published), timeout=180)
    assert_matches_reference(worker.port, scenario)
    assert_dead_letters_complete(stack, prefix, scenario, published)
    worker.stop()


def test_worker_killed_during_rebalance(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=12, accounts=30)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    first, second = chunks(messages, 2)
    a = start_worker(stack, prefix, group)
    published = publish(stack.bootstrap, first)
    b = start_worker(stack, prefix, group)  # joining triggers a rebalance ...
    time.sleep(0.5)
    a.kill()  # ... during which the first worker dies
    published += publish(stack.bootstrap, second)
    wait_applied(stack.redis(), last_offsets(published), timeout=180)
    assert_matches_reference(b.port, scenario)
    b.stop()


def test_redis_outage_is_retried_and_caught_up(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=13, accounts=30)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    first, second = chunks(messages, 2)
    worker = start_worker(stack, prefix, group)
    published = publish(stack.bootstrap, first)
    wait_applied(stack.redis(), last_offsets(published[: len(published) // 3]), timeout=120)
    redis_proc = stack.processes["redis"]  # type: ignore[attr-defined]
    redis_proc.stop()  # SIGTERM: Redis writes its AOF and exits
    published += publish(stack.bootstrap, second)
    time.sleep(4.0)
    down = scrape(worker.port)
    assert down[("cs_redis_up", ())] == 0
    assert http_status(worker.port, "/readyz") == 503
    assert http_status(worker.port, "/healthz") == 200
    stack.processes["redis"] = start_redis(redis_proc.workdir, redis_proc.port, persist=True)  # type: ignore[attr-defined]
    wait_applied(stack.redis(), last_offsets(published), timeout=180)
    up = scrape(worker.port)
    assert up[("cs_redis_up", ())] == 1
    assert http_status(worker.port, "/readyz") == 200
    assert up.get(("cs_redis_retries_total", ()), 0) > 0
    assert "to Redis failed (ConnectionError" in worker.tail(400)
    assert_matches_reference(worker.port, scenario)
    worker.stop()


@pytest.mark.parametrize("part", ["fold", "contribute"])
def test_poison_message_is_dead_lettered_not_a_crash_loop(stack: Stack, part: str) -> None:
    """A family bug on one event (in its fold, or at the batch's end in ``contribute``,
    which used to be retried forever) dead-letters that event; the worker stays up."""
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=14, accounts=10)
    poison = event("ticket.opened", time.time() - 60, "poison-co", ticket_id="P1")
    poisoned = Scenario(
        messages=list(scenario.messages),
        valid=list(scenario.valid),
        invalid=list(scenario.invalid),
        late=scenario.late,
        duplicates=scenario.duplicates,
    )
    poisoned.add(poison)
    poisoned.valid.remove(poison)
    worker = start_worker(
        stack,
        prefix,
        group,
        FAULTY,
        CSPULSE_TEST_FAULT_IDS=poison["id"],
        CSPULSE_TEST_FAULT_IN=part,
    )
    published = publish(stack.bootstrap, [(prefix + t, k, v) for t, k, v in poisoned.messages])
    wait_applied(stack.redis(), last_offsets(published), timeout=120)
    assert_matches_reference(worker.port, poisoned)
    records = consume_all(stack.bootstrap, prefix + "deadletter", len(poisoned.invalid) + 2)
    reasons = {dict(r.headers).get("cs-reason", b"").decode() for r in records}
    assert "processing_error" in reasons
    assert worker.proc is not None and worker.proc.poll() is None, "worker must stay up"
    worker.stop()


def test_family_errors_past_the_cap_stop_the_worker_and_restart_exactly(stack: Stack) -> None:
    """Failing events past the cap (0 here: the first stops the worker): the worker exits
    non-zero with the family's traceback, having applied none of that batch; a worker
    without the bug then applies everything exactly once."""
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=16, accounts=10)
    now = time.time()
    poisons = [
        event("ticket.opened", now - 60 + i, "poison-co", ticket_id=f"P{i}") for i in range(3)
    ]
    for poison in poisons:
        scenario.add(poison)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    worker = start_worker(
        stack,
        prefix,
        group,
        FAULTY,
        CSPULSE_TEST_FAULT_IDS=",".join(p["id"] for p in poisons),
        CSPULSE_PROCESSING_ERROR_CAP="0",
    )
    published = publish(stack.bootstrap, messages)
    assert worker.proc is not None
    code = worker.proc.wait(120)
    assert code != 0
    log = worker.tail(400)
    assert "Traceback" in log and "CSPULSE_PROCESSING_ERROR_CAP=0" in log, log
    assert "fault injected in fold" in log, log
    worker = start_worker(stack, prefix, group)
    wait_applied(stack.redis(), last_offsets(published), timeout=180)
    assert_matches_reference(worker.port, scenario)
    metrics = scrape(worker.port)
    assert not any(
        n == "cs_events_invalid_total" and dict(labels).get("reason") == "processing_error" and v
        for (n, labels), v in metrics.items()
    )
    worker.stop()


def test_sigterm_finishes_the_batch_and_exits_zero(stack: Stack) -> None:
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=15, accounts=30)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    worker = start_worker(stack, prefix, group)
    published = publish(stack.bootstrap, messages)
    time.sleep(1.0)
    started = time.monotonic()
    code = worker.stop(timeout=30)
    took = time.monotonic() - started
    assert code == 0, worker.tail()
    print(f"SIGTERM to exit: {took:.1f}s")
    worker = start_worker(stack, prefix, group)
    wait_applied(stack.redis(), last_offsets(published), timeout=120)
    assert_matches_reference(worker.port, scenario)
    worker.stop()


def test_broker_unreachable_at_start_says_so_and_retries(stack: Stack) -> None:
    env = stack.worker_env("nowhere.", "nowhere", free_port())
    env["CSPULSE_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "streams", "worker", "--connect-timeout", "4"],
        env=env,
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "not reachable yet" in proc.stderr, proc.stderr
    assert "cannot reach Kafka at 127.0.0.1:" in proc.stderr
    assert "CSPULSE_KAFKA_BOOTSTRAP" in proc.stderr


def test_resumes_from_redis_when_redis_is_behind_kafka(stack: Stack) -> None:
    """Redis leads progress: if it lost its last writes (AOF everysec), the worker re-reads."""
    prefix, group = fresh_names(stack)
    now = time.time()
    tickets = [event("ticket.opened", now - 600 + i, "acme", ticket_id=f"R{i}") for i in range(100)]
    messages = [(prefix + "tickets", b"acme", orjson.dumps(e)) for e in tickets]
    worker = start_worker(stack, prefix, group)
    published = publish(stack.bootstrap, messages)
    wait_applied(stack.redis(), last_offsets(published))
    assert worker.stop() == 0  # Kafka's committed offset now follows Redis's
    (topic, partition), last = next(iter(last_offsets(published).items()))
    meta = f"cs:{{{topic}:{partition}}}:meta"
    rewound = last - 50
    stack.redis().hset(meta, "offset", rewound)  # as if Redis lost its last 50 applies
    worker = start_worker(stack, prefix, group)
    wait_applied(stack.redis(), {(topic, partition): last}, timeout=60)
    metrics = scrape(worker.port)
    replayed = sum(v for (n, _), v in metrics.items() if n == "cs_events_total")
    assert replayed == 0, "the replayed events were applied before: their ids are deduplicated"
    dups = sum(v for (n, _), v in metrics.items() if n == "cs_events_duplicate_total")
    assert dups == last - rewound
    worker.stop()


def test_redis_goes_back_in_time_while_the_worker_runs(stack: Stack, tmp_path: Path) -> None:
    """Redis restored to an older snapshot under a running worker: the lost events are re-read.

    As after a crash under AOF everysec or a failover to a lagging replica: the
    worker's own position is ahead of what Redis holds, so it must seek back
    to Redis's offset + 1 rather than apply its next batch over the gap.
    """
    prefix, group = fresh_names(stack)
    scenario = standard(time.time(), seed=15, accounts=20)
    messages = [(prefix + t, k, v) for t, k, v in scenario.messages]
    first, second, third = chunks(messages, 3)
    own = start_redis(tmp_path)
    client = redis.Redis(port=own.port)
    worker = start_worker(stack, prefix, group, CSPULSE_REDIS_URL=f"redis://127.0.0.1:{own.port}/0")
    published = publish(stack.bootstrap, first)
    wait_applied(client, last_offsets(published))
    client.save()
    snapshot = (tmp_path / "dump.rdb").read_bytes()
    published += publish(stack.bootstrap, second)
    wait_applied(client, last_offsets(published))
    own.stop()  # no save points: the snapshot above is all that survives
    (tmp_path / "dump.rdb").write_bytes(snapshot)
    own = start_redis(tmp_path, own.port)
    published += publish(stack.bootstrap, third)
    wait_applied(redis.Redis(port=own.port), last_offsets(published), timeout=180)
    assert_matches_reference(worker.port, scenario)
    assert "Redis went back in time" in worker.tail(400) or "re-reading from" in worker.tail(400)
    worker.stop()
    own.stop()
