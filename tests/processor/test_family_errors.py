"""A bug in a family's code, through the processor and a real Redis.

Under the cap its events are dead-lettered as ``processing_error`` and the
rest applied; past the cap (per partition and minute) the batch raises
before anything is published or applied, so a fixed worker applies it all
exactly once; a bug outside the families' code raises at once, never
retried as if Redis were down.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from aggregators.clock import Clock
from aggregators.effects import Tally
from aggregators.reader import Reader
from streams import telemetry
from streams.error_budget import ErrorBudget, TooManyErrors
from streams.processor import RawMessage
from tests.faults import installed
from tests.processor.conftest import Rig
from tests.processor.test_processor import applied
from tests.scenarios import event

T0 = time.time() - 3600


def batch(n: int) -> tuple[list[RawMessage], list[str]]:
    """``n`` tickets opened at offsets 0..n-1, and their event ids."""
    events = [event("ticket.opened", T0 + i, "acme", ticket_id=f"T{i}") for i in range(n)]
    return [RawMessage(i, b"acme", orjson.dumps(e)) for i, e in enumerate(events)], [
        e["id"] for e in events
    ]


def open_tickets(rig: Rig) -> float:
    reader = Reader(rig.client(), rig.settings.metric_config(), Clock("watermark"))
    return reader.read().snapshot.gauges.get("tickets_open", 0.0)


@pytest.mark.parametrize("part", ["fold", "contribute", "facts"])
def test_under_the_cap_the_failing_events_are_dead_lettered(rig: Rig, part: str) -> None:
    messages, ids = batch(5)
    with installed(frozenset({ids[1]}), part, ["tickets"]):
        done = asyncio.run(rig.process(rig.processor(error_cap=5), "tickets", messages))
    assert done == 4 and applied(rig) == 4
    letters = [(letter.message.offset, letter.reason) for _, _, letter in rig.box.letters]
    if part == "facts":  # an account's facts: every event of the account in the batch
        assert letters == [(i, "processing_error") for i in range(5)]
        assert open_tickets(rig) == 0
    else:
        assert letters == [(1, "processing_error")]
        assert open_tickets(rig) == 4
    assert all("fault injected" in letter.detail for _, _, letter in rig.box.letters)


def test_past_the_cap_the_batch_raises_and_a_fixed_worker_applies_it_once(rig: Rig) -> None:
    messages, ids = batch(5)
    cap = pytest.raises(TooManyErrors, match="CSPULSE_PROCESSING_ERROR_CAP=1")
    with installed(frozenset(ids[1:3]), "fold", ["tickets"]), cap as raised:
        asyncio.run(rig.process(rig.processor(error_cap=1), "tickets", messages))
    assert "fault injected in fold" in str(raised.value.__cause__)
    assert rig.box.letters == [] and applied(rig) == -1  # nothing published, nothing applied
    assert asyncio.run(rig.process(rig.processor(), "tickets", messages)) == 4
    assert asyncio.run(rig.process(rig.processor(), "tickets", messages)) == 4  # redelivered
    assert open_tickets(rig) == 5 and rig.box.letters == []


def test_the_cap_counts_a_partitions_errors_over_a_minute() -> None:
    from aggregators.batch import Outcome

    now = [0.0]
    budget = ErrorBudget(3, clock=lambda: now[0])
    two: Any = Outcome(failed=[(SimpleNamespace(offset=1), "e")] * 2)
    budget.spend("t", 0, two)
    budget.spend("t", 1, two)  # another partition has its own
    now[0] = 59.0
    with pytest.raises(TooManyErrors):
        budget.spend("t", 0, two)
    now[0] = 60.5  # the first two are a minute old
    budget.spend("t", 0, two)


def test_a_bug_outside_the_families_code_raises_at_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Tally, effects: Any) -> None:
        raise ZeroDivisionError("a bug in the planner")

    monkeypatch.setattr(Tally, "into", broken)
    retries = telemetry.REDIS_RETRIES._value.get()
    messages, _ = batch(3)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(asyncio.wait_for(rig.process(rig.processor(), "tickets", messages), 30))
    assert telemetry.REDIS_RETRIES._value.get() == retries  # not counted as a Redis retry
    assert applied(rig) == -1 and rig.box.letters == []
