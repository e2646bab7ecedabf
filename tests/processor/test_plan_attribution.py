"""Per-plan numbers by event time, whatever order the topics are read in (metrics.md,
Segments).

One history (plans named, changed mid-way, events before any plan) is applied
in time order, billing first, billing last and with billing jittered by up to
20 minutes; each time the per-plan counts must equal the ones worked out here
from the events alone: an event counts in its account's plan at its own time
(a ticket at its opening, a session at its start). Billing read last makes the
other partitions wait: the processor holds them (``Hold``) until the billing
partition is applied past their time plus the plan lateness.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from aggregators.clock import Clock
from aggregators.reader import Reader
from streams.plan_wait import Hold
from streams.processor import Processor, RawMessage
from tests.processor.conftest import Rig
from tests.scenarios import event

T0 = float(int(time.time()) // 3600 * 3600 - 3 * 86_400)  # the history ends a day ago
HOUR = 3600.0
TOPICS = ("billing", "tickets", "surveys", "logins")
PLANS = ("basic", "team", "pro")

Body = dict[str, Any]


def history(seed: int, billing_jitter: float = 0.0) -> dict[str, list[Body]]:
    """Two days of 12 accounts: a plan from some hour on (some never), changes later."""
    rng = random.Random(seed)
    out: dict[str, list[Body]] = {topic: [] for topic in TOPICS}
    for n in range(12):
        account = f"acct-{n}"
        if n % 4:  # one account in four never names a plan: its events stay in `none`
            start = T0 + rng.uniform(2, 20) * HOUR
            out["billing"].append(_sub("subscription.started", start, account, rng.choice(PLANS)))
            if n % 3 == 0:
                change = start + rng.uniform(4, 20) * HOUR
                out["billing"].append(_sub("subscription.changed", change, account, "pro"))
            if n % 5 == 0:
                failed = start + rng.uniform(1, 10) * HOUR
                out["billing"].append(
                    event(
                        "invoice.failed",
                        failed,
                        account,
                        invoice_id=f"i{n}",
                        amount_cents=900,
                        currency="USD",
                    )
                )
        for k in range(10):
            at = T0 + rng.uniform(0, 46) * HOUR
            out["tickets"].append(event("ticket.opened", at, account, ticket_id=f"{n}-{k}"))
            out["surveys"].append(
                event("survey.answered", at + 30, account, kind="nps", score=rng.randint(0, 10))
            )
            session, user = f"{n}-s{k}", f"u{n}-{k % 3}"
            for step, kind in enumerate(("session.started", "session.heartbeat", "session.ended")):
                extra = {"platform": "web"} if step == 0 else {}
                out["logins"].append(
                    event(kind, at + 600 * step, account, session_id=session, user_id=user, **extra)
                )
    out["billing"].sort(key=lambda b: b["time"])
    if billing_jitter:  # the billing partition is then not in event-time order
        for body in out["billing"]:
            body["time"] = _shift(body["time"], rng.uniform(-billing_jitter, billing_jitter))
    for topic in TOPICS:
        if topic != "billing":
            out[topic].sort(key=lambda b: b["time"])
    return out


def _sub(kind: str, at: float, account: str, plan: str) -> Body:
    return event(
        kind, at, account, subscription_id=f"{account}-1", plan=plan, mrr_cents=1000, currency="USD"
    )


def _shift(text: str, seconds: float) -> str:
    from datetime import datetime, timedelta

    moved = datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moved.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(body: Body) -> float:
    from datetime import datetime

    return datetime.fromisoformat(body["time"].replace("Z", "+00:00")).timestamp()


def plan_at(billing: list[Body]) -> Callable[[str, float], str]:
    """The contract's rule, written out: latest plan-naming event at or before T."""
    named = sorted(
        (_time(b), b["data"]["account_id"], b["data"]["plan"])
        for b in billing
        if "plan" in b["data"]
    )

    def at(account: str, t: float) -> str:
        found = "none"
        for ts, who, plan in named:
            if who == account and ts <= t:
                found = plan
        return found

    return at


def expected(events: dict[str, list[Body]]) -> dict[str, Counter[str]]:
    """Per plan, over the whole history (the 30d window): the counts the worker serves."""
    at = plan_at(events["billing"])
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for body in events["tickets"]:
        out["tickets_opened"][at(body["data"]["account_id"], _time(body))] += 1
    for body in events["surveys"]:
        out["responses_nps"][at(body["data"]["account_id"], _time(body))] += 1
    users: dict[str, set[str]] = defaultdict(set)
    for body in events["logins"]:
        data = body["data"]
        plan = at(data["account_id"], _time(body))
        users[plan].add(data["user_id"])
        if body["type"] == "session.started":
            out["sessions"][plan] += 1
    for plan, members in users.items():
        out["u"][plan] = len(members)
    for body in events["billing"]:
        if body["type"] == "invoice.failed":
            out["payment_failures"][at(body["data"]["account_id"], _time(body))] += 1
    return out


def served(rig: Rig) -> dict[str, Counter[str]]:
    snapshot = (
        Reader(rig.client(), rig.settings.metric_config(), Clock("watermark")).read().snapshot
    )
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for field, value in snapshot.sums["30d"].items():
        name, _, plan = field.partition("@")
        if plan and value:
            out[name][plan] = round(value)
    for (name, window), count in snapshot.distinct.items():
        base, _, plan = name.partition("@")
        if window == "30d" and plan and count:
            out[base][plan] = count
    return out


def messages(bodies: list[Body]) -> list[RawMessage]:
    return [
        RawMessage(i, b["data"]["account_id"].encode(), orjson.dumps(b))
        for i, b in enumerate(bodies)
    ]


class Log:
    """Each topic's partition 0 as a broker would hold it, with a read position."""

    def __init__(self, events: dict[str, list[Body]], billing_end: int | None = None) -> None:
        self.messages = {topic: messages(bodies) for topic, bodies in events.items()}
        self.billing_end = len(events.get("billing", ())) if billing_end is None else billing_end
        self.position = dict.fromkeys(events, 0)
        self.holds = 0

    def done(self) -> bool:
        return all(self.position[t] >= len(m) for t, m in self.messages.items())

    async def end(self, topic: str, partition: int) -> int:
        assert topic == "cs.billing" and partition == 0
        return self.billing_end

    async def read(self, rig: Rig, processor: Processor, topic: str, size: int) -> None:
        start = self.position[topic]
        batch = self.messages[topic][start : start + size]
        if not batch:
            return
        result = await rig.process(processor, topic, batch)
        if isinstance(result, Hold):
            self.holds += 1
            self.position[topic] = result.resume_at
        else:
            assert isinstance(result, int)
            self.position[topic] = result + 1


def drive(
    rig: Rig,
    events: dict[str, list[Body]],
    order: list[str],
    size: int = 25,
    billing_end: int | None = None,
) -> Log:
    """Read the topics round-robin in ``order`` until everything is applied."""
    log = Log(events, billing_end)

    async def scenario() -> None:
        processor = rig.processor()
        processor.plan_wait.ends = log.end
        for _round in range(10_000):
            if log.done():
                return
            for topic in order:
                await log.read(rig, processor, topic, size)
        raise AssertionError("the topics never finished: a wait that does not end")

    asyncio.run(scenario())
    return log


def drive_billing_last(rig: Rig, events: dict[str, list[Body]]) -> Log:
    """Every other topic read as far as it goes first; billing only when they all wait."""
    log = Log(events)

    async def scenario() -> None:
        processor = rig.processor()
        processor.plan_wait.ends = log.end
        for _round in range(10_000):
            if log.done():
                return
            before = dict(log.position)
            for topic in ("tickets", "surveys", "logins"):
                await log.read(rig, processor, topic, 25)
            if log.position == before:  # all of them wait: now one billing batch
                await log.read(rig, processor, "billing", 5)
        raise AssertionError("the topics never finished")

    asyncio.run(scenario())
    return log


def assert_per_plan(rig: Rig, events: dict[str, list[Body]]) -> None:
    want, got = expected(events), served(rig)
    assert set(want["tickets_opened"]) >= {"none", "pro"}, "the history covers several plans"
    for name, per_plan in want.items():
        assert got[name] == per_plan, name


@pytest.mark.parametrize("order", [TOPICS, ("tickets", "surveys", "logins", "billing")])
def test_per_plan_counts_follow_event_time_read_round_robin(
    rig: Rig, order: tuple[str, ...]
) -> None:
    events = history(seed=7)
    drive(rig, events, list(order))
    assert_per_plan(rig, events)


def test_per_plan_counts_with_billing_read_last(rig: Rig) -> None:
    events = history(seed=11)
    log = drive_billing_last(rig, events)
    assert log.holds > 0, "the other topics waited for billing"
    assert_per_plan(rig, events)


def test_per_plan_counts_with_billing_read_first(rig: Rig) -> None:
    events = history(seed=13)
    drive(rig, {"billing": events["billing"]}, ["billing"])
    others = {t: events[t] for t in TOPICS if t != "billing"}
    log = drive(rig, others, ["tickets", "surveys", "logins"], billing_end=len(events["billing"]))
    assert log.holds == 0, "billing read to its end: nothing waits"
    assert_per_plan(rig, events)


def test_per_plan_counts_with_billing_jittered_twenty_minutes(rig: Rig) -> None:
    events = history(seed=17, billing_jitter=20 * 60)
    drive_billing_last(rig, events)
    assert_per_plan(rig, events)


def test_live_traffic_with_billing_caught_up_never_waits(rig: Rig) -> None:
    events = history(seed=19)
    log = drive(rig, events, list(TOPICS), size=1)
    assert log.holds == 0
    assert_per_plan(rig, events)


def test_a_ticket_read_before_its_opening_counts_in_the_plan_at_its_opening(rig: Rig) -> None:
    """basic from T0, pro from T0 + 2 h; a ticket opened at T0 + 1 h and resolved at
    T0 + 3 h, its resolution read first: the whole ticket counts in basic."""
    billing = [
        _sub("subscription.started", T0, "acme", "basic"),
        _sub("subscription.changed", T0 + 2 * HOUR, "acme", "pro"),
    ]
    resolved = event("ticket.resolved", T0 + 3 * HOUR, "acme", ticket_id="T1")
    opened = event("ticket.opened", T0 + HOUR, "acme", ticket_id="T1")
    started = event("session.started", T0 + HOUR, "acme", session_id="S1", user_id="u1")
    beat = event("session.heartbeat", T0 + 2.5 * HOUR, "acme", session_id="S1", user_id="u1")
    late_beat = event("session.heartbeat", T0 + HOUR + 600, "acme", session_id="S1", user_id="u1")

    async def scenario() -> None:
        processor = rig.processor()
        assert await rig.process(processor, "billing", messages(billing)) == 1
        tickets = messages([resolved, opened])
        assert await rig.process(processor, "tickets", tickets[:1]) == 0
        assert await rig.process(processor, "tickets", tickets[1:]) == 1
        logins = messages([beat, started, late_beat])
        assert await rig.process(processor, "logins", logins[:1]) == 0
        assert await rig.process(processor, "logins", logins[1:]) == 2

    asyncio.run(scenario())
    got = served(rig)
    assert got["tickets_opened"] == Counter({"basic": 1})
    assert got["tickets_resolved"] == Counter({"basic": 1})
    assert got["sessions"] == Counter({"basic": 1})
    # the one gap within the idle timeout (started -> late beat, 600 s) in the start's plan
    assert got["time_in_app"] == Counter({"basic": 600})
