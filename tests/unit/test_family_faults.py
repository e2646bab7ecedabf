"""One rule for a bug in a family's code: the events that caused it are failed, no more.

A family's ``key``, ``count`` or ``fold`` failing fails its event alone; its
``contribute`` (or ``place``, ``finish``) the events of that entity; its
``facts`` the account's events of the batch. The rest of the batch gives
exactly what it gives without those events. An exception outside the
families' code is raised. The faults are test wrappers (:mod:`tests.faults`).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aggregators.batch import (
    BatchInput,
    BatchResult,
    Offered,
    fold_batch,
    keys_to_load,
    make_clock,
    offer,
)
from aggregators.config import MetricConfig
from aggregators.effects import Tally
from aggregators.families.sessions import SESSION_ENTITY
from schemas import Event, parse_event
from tests.faults import Injected, installed

CONFIG = MetricConfig()
T0 = 1_800_000_000.0
NOW = T0 + 3600

TICKETS = [  # (type, offset in seconds, account, data)
    ("ticket.opened", 100, "acme", {"ticket_id": "T1"}),
    ("ticket.replied", 160, "acme", {"ticket_id": "T1", "author": "agent", "agent_id": "ana"}),
    ("ticket.resolved", 220, "acme", {"ticket_id": "T1"}),
    ("ticket.opened", 230, "acme", {"ticket_id": "T2"}),
    ("ticket.opened", 240, "globex", {"ticket_id": "T3"}),
]
SESSIONS = [
    ("session.started", 100, "acme", {"session_id": "S1", "user_id": "u1"}),
    ("session.heartbeat", 160, "acme", {"session_id": "S1", "user_id": "u1"}),
    ("session.started", 200, "acme", {"session_id": "S2", "user_id": "u2"}),
    ("session.heartbeat", 777, "acme", {"session_id": "S2", "user_id": "u2"}),
    ("session.started", 300, "globex", {"session_id": "S3", "user_id": "u3"}),
]


def items(
    specs: list[tuple[str, float, str, dict[str, Any]]], skip: frozenset[int] = frozenset()
) -> list[Offered]:
    """The events at offsets 1.. (ids e1..), without the offsets in ``skip``."""
    out = []
    for n, (kind, at, account, data) in enumerate(specs, start=1):
        if n in skip:
            continue
        raw = orjson.dumps(
            {
                "specversion": "1.0",
                "id": f"e{n}",
                "source": "test",
                "type": kind,
                "time": _iso(T0 + at),
                "data": {"account_id": account, **data},
            }
        )
        parsed = parse_event(raw, now=NOW + 10)
        assert isinstance(parsed, Event), parsed
        out.append(offer(n, parsed))
    return out


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


def fold(family: str, offered: list[Offered]) -> BatchResult:
    keys_to_load(family, offered)
    return fold_batch(family, offered, BatchInput(), CONFIG, make_clock(CONFIG, NOW))


def failed(result: BatchResult) -> list[int]:
    return [item.offset for item, _ in result.outcome.failed]


def assert_same_as_without(result: BatchResult, family: str, specs: Any, skip: set[int]) -> None:
    clean = fold(family, items(specs, skip))
    assert failed(result) == sorted(skip)
    assert isinstance(result.outcome.error, Injected)
    assert all("Injected: fault injected" in why for _, why in result.outcome.failed)
    assert result.effects == clean.effects
    assert result.outcome.applied == clean.outcome.applied
    assert result.seen == clean.seen


@pytest.mark.parametrize("part", ["key", "fold"])
def test_a_fault_in_key_or_fold_fails_its_event_alone(part: str) -> None:
    with installed(frozenset({"e2"}), part, ["tickets"]):
        result = fold("tickets", items(TICKETS))
    assert_same_as_without(result, "tickets", TICKETS, {2})


def test_a_fault_in_contribute_fails_the_events_of_that_entity() -> None:
    """Used to be retried forever as if Redis were down."""
    with installed(frozenset({"e2"}), "contribute", ["tickets"]):
        result = fold("tickets", items(TICKETS))
    assert_same_as_without(result, "tickets", TICKETS, {1, 2, 3})  # ticket T1


def test_a_fault_in_facts_fails_the_accounts_events_of_the_batch() -> None:
    with installed(frozenset({"e5"}), "facts", ["tickets"]):
        result = fold("tickets", items(TICKETS))
    assert_same_as_without(result, "tickets", TICKETS, {5})  # globex's one event
    with installed(frozenset({"e2"}), "facts", ["surveys"]):
        answers = [
            (
                "survey.answered",
                100 + i,
                "acme" if i % 2 else "globex",
                {"kind": "nps", "score": 9},
            )
            for i in range(4)
        ]
        result = fold("surveys", items(answers))
    assert_same_as_without(result, "surveys", answers, {2, 4})  # acme's


def test_a_fault_in_the_session_fold_fails_that_sessions_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finish = SESSION_ENTITY.finish

    def failing(state: Any, cutoff: float) -> Any:
        if T0 + 777 in state.times:
            raise Injected("fault injected in finish")
        return finish(state, cutoff)

    monkeypatch.setattr(SESSION_ENTITY, "finish", failing)
    result = fold("logins", items(SESSIONS))
    monkeypatch.undo()
    assert_same_as_without(result, "logins", SESSIONS, {3, 4})  # session S2


def test_an_exception_outside_the_families_code_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Tally, effects: Any) -> None:
        raise ZeroDivisionError("a bug in the planner")

    monkeypatch.setattr(Tally, "into", broken)
    with pytest.raises(ZeroDivisionError):
        fold("tickets", items(TICKETS))
