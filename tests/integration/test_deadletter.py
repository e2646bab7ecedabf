"""``cspulse deadletter list|replay`` and ``cspulse status`` against the real broker and Redis.

A worker dead-letters three messages: one not JSON, one in a foreign
currency, and one valid ticket whose processing is made to fail (fault
injection, :mod:`tests.faults`). Once the worker runs without the fault, replaying the
``processing_error`` letter applies the ticket; replaying it again counts a
duplicate and changes no number.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaProducer

from streams import deadletter
from streams.config import Settings
from tests.harness import (
    Published,
    Stack,
    applied_offsets,
    consume_all,
    dumps,
    last_offsets,
    publish,
    scrape,
    wait_applied,
)
from tests.integration.conftest import fresh_names
from tests.scenarios import event

OPENED_1H = ("cs_tickets_opened", (("plan", "all"), ("window", "1h")))
FAST_GROUP = {"CSPULSE_SESSION_TIMEOUT": "6"}
FAULTY = "tests.faulty_worker"
"""The worker with a family that fails on the events named (:mod:`tests.faults`)."""


def cspulse(stack: Stack, prefix: str, *args: str) -> str:
    """Run the command line against the test broker and Redis; its stdout."""
    env = stack.worker_env(prefix, "unused", 0)
    done = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def rows(output: str, word: str) -> list[str]:
    return [line for line in output.splitlines() if word in line]


@pytest.fixture(scope="module")
def letters(stack: Stack):  # type: ignore[no-untyped-def]
    prefix, group = fresh_names(stack)
    now = time.time()
    poisoned = event("ticket.opened", now - 120, "acme", ticket_id="T-1", channel="email")
    euro = event(
        "invoice.paid", now - 100, "acme", invoice_id="i1", amount_cents=900, currency="EUR"
    )
    sent = publish(
        stack.bootstrap,
        [
            (prefix + "tickets", b"acme", dumps(poisoned)),
            (prefix + "tickets", b"acme", b"{not json at all"),
            (prefix + "billing", b"acme", dumps(euro)),
        ],
    )
    worker = stack.new_worker(
        prefix, group, FAULTY, CSPULSE_TEST_FAULT_IDS=poisoned["id"], **FAST_GROUP
    ).start()
    wait_applied(stack.redis(), last_offsets(sent))
    assert len(consume_all(stack.bootstrap, prefix + "deadletter", 3)) == 3
    worker.stop()
    yield prefix, group, sent


def test_list_prints_source_offset_reason_and_first_bytes(stack: Stack, letters) -> None:  # type: ignore[no-untyped-def]
    prefix, _group, sent = letters
    out = cspulse(stack, prefix, "deadletter", "list")
    assert "3 letter(s)" in out
    header = out.splitlines()[0].split()
    assert header[:5] == ["written", "source", "offset", "reason", "detail"]
    not_json = rows(out, "not_json")
    assert len(not_json) == 1 and "{not json at all" in not_json[0]
    assert f"{sent[1].topic}:{sent[1].partition}  {sent[1].offset}" in not_json[0]
    currency = cspulse(stack, prefix, "deadletter", "list", "--reason", "currency")
    assert "1 letter(s)" in currency and "EUR" in currency
    assert "0 letter(s)" in cspulse(
        stack, prefix, "deadletter", "list", "--since", "2099-01-01T00:00:00Z"
    )
    assert "3 letter(s)" in cspulse(stack, prefix, "deadletter", "list", "--since", "1h")


def end_offsets(stack: Stack, published: list[Published]) -> dict[tuple[str, int], int]:
    return applied_offsets(stack.redis(), last_offsets(published))


def test_replay_applies_a_fixed_letter_once(stack: Stack, letters) -> None:  # type: ignore[no-untyped-def]
    prefix, group, sent = letters
    dry = cspulse(
        stack, prefix, "deadletter", "replay", "--reason", "processing_error", "--dry-run"
    )
    assert f"would publish 1 to {prefix}tickets" in dry
    worker = stack.new_worker(prefix, group, **FAST_GROUP).start()
    try:
        assert scrape(worker.port).get(OPENED_1H, 0.0) == 0.0  # the dry run published nothing
        out = cspulse(stack, prefix, "deadletter", "replay", "--reason", "processing_error")
        assert f"published 1 to {prefix}tickets" in out
        tickets = (prefix + "tickets", sent[0].partition)
        wait_applied(stack.redis(), {tickets: sent[1].offset + 1})
        assert scrape(worker.port)[OPENED_1H] == 1.0
        again = cspulse(stack, prefix, "deadletter", "replay", "--reason", "processing_error")
        assert f"published 1 to {prefix}tickets" in again
        wait_applied(stack.redis(), {tickets: sent[1].offset + 2})
        metrics = scrape(worker.port)
        assert metrics[OPENED_1H] == 1.0
        assert metrics[("cs_events_duplicate_total", (("topic", prefix + "tickets"),))] == 1.0
    finally:
        worker.stop()


def test_status_shows_applied_end_and_lag_per_partition(stack: Stack, letters) -> None:  # type: ignore[no-untyped-def]
    prefix, _group, sent = letters
    applied = applied_offsets(stack.redis(), last_offsets(sent))
    out = cspulse(stack, prefix, "status")
    assert out.splitlines()[0].split() == [
        "topic", "partition", "applied", "end", "lag", "stream", "time", "last", "apply",
    ]  # fmt: skip
    for (topic, partition), offset in applied.items():
        line = [r for r in rows(out, topic) if r.split()[1] == str(partition)]
        assert len(line) == 1, out
        cells = line[0].split()
        assert cells[2] == str(offset) and cells[3] == str(offset + 1) and cells[4] == "0", out
        assert cells[6].endswith("s") and cells[7] == "ago", out
    assert len(rows(out, prefix)) == 8  # 4 event topics x 2 partitions
    assert "total lag: 0 message(s)" in out


async def _send_in_one_batch(bootstrap: str, topic: str, values: list[bytes]) -> list[int]:
    """Values sent together, so the producer puts them in one record batch per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, partition=0) for value in values]
        return [(await f).offset for f in futures]
    finally:
        await producer.stop()


def test_letters_written_in_one_record_batch_are_all_read(stack: Stack) -> None:
    """A batch's later records are listed and counted in the end offset, not only its first."""
    prefix, _group = fresh_names(stack)
    settings = Settings(topic_prefix=prefix)
    values = [b"first", b"second", b"third"]
    offsets = asyncio.run(_send_in_one_batch(stack.bootstrap, settings.deadletter_topic, values))
    assert offsets == [0, 1, 2]
    letters = asyncio.run(deadletter.read_letters(settings, stack.bootstrap))
    assert [(x.offset, x.value) for x in letters] == list(zip(offsets, values, strict=True))
    tickets = settings.topic("tickets")
    offsets = asyncio.run(_send_in_one_batch(stack.bootstrap, tickets, values))
    ends = asyncio.run(deadletter.end_offsets(settings, stack.bootstrap))
    assert ends[(tickets, 0)] == offsets[-1] + 1 == 3
