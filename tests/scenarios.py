"""Event sets for integration tests, with what the contract says should happen to each.

Built from the event contract alone: the generator supplies realistic bulk,
hand-written cases supply the edges (out-of-order arrival, late retractions,
producer duplicates, invalid and too-late events).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.demo.world import EventGenerator, GeneratorConfig


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(
    event_type: str, ts: float, account: str, source: str = "test", **data: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.UUID(int=random.getrandbits(128))),
        "source": source,
        "type": event_type,
        "time": iso(ts),
        "data": {"account_id": account, **data},
    }


TOPIC_OF = {
    "ticket": "tickets",
    "survey": "surveys",
    "session": "logins",
    "subscription": "billing",
    "trial": "billing",
    "invoice": "billing",
    "cost": "billing",
}


def topic_of(kind: str) -> str:
    return TOPIC_OF[kind.split(".")[0]]


@dataclass
class Scenario:
    """Messages in publish order: which are valid (for the reference), which are dead letters."""

    messages: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    valid: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[tuple[str, bytes, str]] = field(default_factory=list)
    """(topic suffix, value, reason) of messages the contract rejects."""
    late: int = 0
    """Too-late events that change no state: dead-lettered as ``too_late``."""
    late_applied: int = 0
    """Too-late events that change state: applied (so also valid), counted as late."""
    duplicates: int = 0

    def add(self, ev: dict[str, Any]) -> None:
        self.messages.append(
            (topic_of(ev["type"]), ev["data"]["account_id"].encode(), orjson.dumps(ev))
        )
        self.valid.append(ev)

    def add_raw(self, topic: str, value: bytes, reason: str, key: bytes | None = b"acme") -> None:
        self.messages.append((topic, key, value))
        self.invalid.append((topic, value, reason))

    def add_duplicate(self, index: int) -> None:
        self.messages.append(self.messages[index])
        self.duplicates += 1

    def add_late(self, ev: dict[str, Any]) -> None:
        """An event too late for its buckets: dead-lettered unless it changes state."""
        if ev["type"].startswith(("ticket.", "subscription.", "trial.")):
            self.add(ev)
            self.late_applied += 1
            return
        self.messages.append(
            (topic_of(ev["type"]), ev["data"]["account_id"].encode(), orjson.dumps(ev))
        )
        self.late += 1


def generated_bulk(start: float, end: float, accounts: int, seed: int) -> list[dict[str, Any]]:
    gen = EventGenerator(GeneratorConfig(accounts=accounts, users_per_account=4, seed=seed), start)
    messages = gen.bootstrap() + gen.advance(end)
    return [orjson.loads(m.value) for m in messages]


def shuffled_locally(
    events: list[dict[str, Any]], rng: random.Random, span: int = 40
) -> list[dict[str, Any]]:
    """Shuffle within consecutive chunks: arrival order differs from time order, locally."""
    out: list[dict[str, Any]] = []
    for i in range(0, len(events), span):
        chunk = events[i : i + span]
        rng.shuffle(chunk)
        out.extend(chunk)
    return out


def edge_cases(scenario: Scenario, now: float) -> None:
    """Hand-written cases the bulk may not hit."""
    t0 = now - 7200
    # FCR retraction by a late reopen: counted first, then taken out.
    scenario.add(event("ticket.opened", t0, "edge-a", ticket_id="E1", channel="email"))
    scenario.add(
        event("ticket.replied", t0 + 60, "edge-a", ticket_id="E1", author="agent", agent_id="ana")
    )
    scenario.add(event("ticket.resolved", t0 + 120, "edge-a", ticket_id="E1"))
    # resolved arrives before opened; a second agent reply dated before the resolution arrives last.
    scenario.add(event("ticket.resolved", t0 + 900, "edge-a", ticket_id="E2"))
    scenario.add(event("ticket.opened", t0 + 300, "edge-a", ticket_id="E2", channel="chat"))
    scenario.add(
        event("ticket.replied", t0 + 400, "edge-a", ticket_id="E2", author="agent", agent_id="bo")
    )
    scenario.add(event("ticket.replied", t0 + 500, "edge-a", ticket_id="E2", author="customer"))
    # session with an out-of-order heartbeat and an idle gap; ended before its last heartbeat
    for offset in (0, 60, 180, 4000):
        kind = "session.started" if offset == 0 else "session.heartbeat"
        scenario.add(
            event(kind, t0 + offset, "edge-a", session_id="S1", user_id="u-edge", platform="web")
        )
    scenario.add(event("session.ended", t0 + 4100, "edge-a", session_id="S1", user_id="u-edge"))
    scenario.add(event("session.heartbeat", t0 + 120, "edge-a", session_id="S1", user_id="u-edge"))
    # billing: new, expansion, stale change (older than applied), churn, reactivation
    plan = {"plan": "team", "currency": "USD"}
    scenario.add(
        event("subscription.started", t0, "edge-b", subscription_id="B1", mrr_cents=10000, **plan)
    )
    scenario.add(
        event(
            "subscription.changed",
            t0 + 600,
            "edge-b",
            subscription_id="B1",
            mrr_cents=15000,
            **plan,
        )
    )
    scenario.add(
        event(
            "subscription.changed",
            t0 + 300,
            "edge-b",
            subscription_id="B1",
            mrr_cents=99900,
            **plan,
        )
    )
    scenario.add(event("subscription.canceled", t0 + 1200, "edge-b", subscription_id="B1"))
    scenario.add(
        event(
            "subscription.started",
            t0 + 1800,
            "edge-b",
            subscription_id="B2",
            mrr_cents=5000,
            **plan,
        )
    )
    scenario.add(
        event(
            "invoice.failed",
            t0 + 1900,
            "edge-b",
            invoice_id="I1",
            amount_cents=5000,
            currency="USD",
        )
    )
    scenario.add(
        event("trial.converted", t0 + 2000, "edge-c", subscription_id="C1", mrr_cents=4900, **plan)
    )
    scenario.add(event("subscription.renewed", t0 + 2100, "edge-b", subscription_id="B2"))
    scenario.add(
        event("subscription.canceled", t0 + 2200, "edge-c", subscription_id="C1", at_term_end=True)
    )
    scenario.add(
        event(
            "survey.answered", t0 + 50, "edge-a", kind="nps", score=9, comment="Great help, thanks!"
        )
    )
    scenario.add(event("survey.answered", t0 + 60, "edge-a", kind="csat", score=6, scale_max=7))
    scenario.add(
        event(
            "survey.answered", t0 + 70, "edge-a", kind="ces", score=2, comment="Slow and confusing."
        )
    )
    scenario.add(event("ticket.reopened", t0 + 3000, "edge-a", ticket_id="E1"))


def invalid_cases(scenario: Scenario, now: float) -> None:
    ok = event("ticket.opened", now - 100, "acme", ticket_id="X1")
    scenario.add_raw("tickets", b"not json at all", "not_json")
    scenario.add_raw("tickets", b"[1, 2, 3]", "not_object")
    scenario.add_raw("tickets", orjson.dumps({**ok, "type": "ticket.exploded"}), "unknown_type")
    scenario.add_raw("tickets", orjson.dumps({**ok, "time": "yesterday"}), "bad_time")
    scenario.add_raw("tickets", orjson.dumps({**ok, "time": iso(now + 3600)}), "future_time")
    scenario.add_raw(
        "tickets", orjson.dumps({**ok, "data": {"ticket_id": "X1"}}), "missing_field", key=None
    )
    survey = event("survey.answered", now - 100, "acme", kind="nps", score=11)
    scenario.add_raw("surveys", orjson.dumps(survey), "score_range")
    money = event(
        "invoice.paid", now - 100, "acme", invoice_id="I9", amount_cents=100, currency="EUR"
    )
    scenario.add_raw("billing", orjson.dumps(money), "currency")


def standard(now: float, seed: int = 7, accounts: int = 20) -> Scenario:
    """Generator bulk, shuffled locally, plus edges, duplicates, invalid and late events."""
    rng = random.Random(seed)
    random.seed(seed)
    scenario = Scenario()
    bulk = generated_bulk(now - 3 * 3600, now - 600, accounts, seed)
    for ev in shuffled_locally(bulk, rng):
        scenario.add(ev)
    edge_cases(scenario, now)
    invalid_cases(scenario, now)
    for index in rng.sample(range(len(bulk)), max(3, len(bulk) // 50)):
        scenario.add_duplicate(index)
    scenario.add_late(event("ticket.opened", now - 40 * 86400, "acme", ticket_id="OLD"))
    scenario.add_late(event("survey.answered", now - 40 * 86400, "acme", kind="nps", score=3))
    return scenario


SHARED_PLANS = {"acme": "team", "globex": "team", "initech": "starter", "umbrella": "starter"}
"""Accounts of :func:`shared_users` with a subscription; ``hooli`` has none (plan ``none``)."""
SHARED_SIDES = {"acme": 0, "umbrella": 0, "hooli": 0, "globex": 1, "initech": 1}
"""Which of two usage partitions each account of :func:`shared_users` is applied to."""
DAY = 86400.0
SHARED_VISITS = [  # (user, account, seconds before now)
    ("ann", "acme", 3 * DAY),  # ann: team on both partitions, newest on the second
    ("ann", "globex", 600.0),
    ("bob", "acme", 1200.0),  # bob: team on one partition, starter on the other
    ("bob", "initech", 7200.0),
    ("cat", "umbrella", 0.0),  # cat: three accounts, two of them on the second partition
    ("cat", "initech", 6 * DAY),
    ("cat", "globex", 2 * DAY),
    ("dan", "hooli", 15 * DAY),  # dan: two accounts of the first partition
    ("dan", "acme", 2 * DAY),
    ("eve", "globex", 1800.0),
]


def shared_users(now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(billing, sessions): users active in accounts on two partitions and two plans.

    Each visit is a session start and a heartbeat 60 s later; the newest event is at ``now``.
    """
    billing = [
        event(
            "subscription.started",
            now - 20 * DAY,
            account,
            subscription_id=f"S-{account}",
            plan=plan,
            mrr_cents=4900 if plan == "starter" else 19900,
            currency="USD",
        )
        for account, plan in sorted(SHARED_PLANS.items())
    ]
    sessions = []
    for n, (user, account, ago) in enumerate(SHARED_VISITS):
        ids = {"session_id": f"S{n}", "user_id": user}
        sessions.append(event("session.started", now - ago - 60, account, **ids))
        sessions.append(event("session.heartbeat", now - ago, account, **ids))
    return billing, sessions
