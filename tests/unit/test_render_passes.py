"""The batch-wide shortcuts give what the event-by-event rules give."""

import math

from aggregators.offered import offer
from aggregators.plans import plan_events
from aggregators.store import _field_amounts, number
from schemas import Event
from schemas.models import SessionHeartbeat, SubscriptionStarted, TicketOpened


def _beat(i: int) -> Event:
    data = SessionHeartbeat(account_id="acme", session_id="s1", user_id="u1")
    return Event(f"b{i}", "app", "session.heartbeat", 100.0 + i, "acme", data)


def _started(account: str, plan: str, ts: float) -> Event:
    data = SubscriptionStarted(
        account_id=account, currency="USD", subscription_id="sub1", plan=plan, mrr_cents=100
    )
    return Event(f"s-{account}", "billing", "subscription.started", ts, account, data)


def test_a_batch_naming_no_plan_names_none() -> None:
    ticket = TicketOpened(account_id="acme", ticket_id="T1")
    events = [_beat(1), Event("t1", "desk", "ticket.opened", 5.0, "acme", ticket), _beat(2)]
    assert plan_events([offer(i, e) for i, e in enumerate(events)], {}) == {}


def test_a_naming_event_among_others_is_found_with_its_label() -> None:
    events = [_beat(1), _started("globex", "Pro Annual", 50.0), _beat(2)]
    offered = [offer(i, e) for i, e in enumerate(events)]
    assert plan_events(offered, {"Pro Annual": "pro"}) == {"globex": [(50.0, 1, "pro")]}


def test_field_amounts_write_what_number_writes_and_leave_zeros_out() -> None:
    fields = {"sessions": 3.0, "time_in_app": 30.117000000000004, "users": 0.0, "x": -2.5}
    pairs = _field_amounts(fields)
    kept = {name: amount for name, amount in fields.items() if amount}
    assert pairs[0::2] == list(kept)
    assert pairs[1::2] == [number(amount) for amount in kept.values()]
    assert pairs[1::2][:2] == ["3", "30.117000000000004"]


def test_field_amounts_take_ints_and_infinities_as_number_does() -> None:
    fields: dict[str, float] = {"a": 2, "b": math.inf, "c": 1e300}
    assert _field_amounts(fields) == ["a", "2", "b", "inf", "c", number(1e300)]
