"""Behaviour of the typed core on the cases of the robustness issue (no Redis).

Each expected value is worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from aggregators.batch import BatchInput, BatchResult, Offered, fold_batch, make_clock, offer
from aggregators.config import MetricConfig
from aggregators.entity_keys import EntityKey, facts_key
from aggregators.facts import TicketFacts
from aggregators.families.sessions import FAMILY as SESSIONS
from aggregators.families.tickets import FAMILY as TICKETS
from aggregators.plans import label_of, split
from aggregators.readout import Snapshot, compute, split_by_plan
from schemas import Event, parse_event

CONFIG = MetricConfig()
T0 = 1_800_000_000.0  # a multiple of 3600
DAY = 86400
MONTH = 30 * DAY


def ev(event_type: str, at: float, n: int, account: str = "acme", **data: Any) -> Offered:
    raw = orjson.dumps(
        {
            "specversion": "1.0",
            "id": data.pop("id_", f"e{n}"),
            "source": "test",
            "type": event_type,
            "time": datetime.fromtimestamp(at, UTC).isoformat(),
            "data": {"account_id": account, **data},
        }
    )
    parsed = parse_event(raw, now=at + 10**9)
    assert isinstance(parsed, Event), parsed
    return offer(n, parsed)


def fold(
    family: str,
    items: list[Offered],
    t: float,
    *,
    states: dict[EntityKey, str] | None = None,
    advancing: bool = False,
) -> BatchResult:
    clock = make_clock(CONFIG, t, advancing=advancing)
    return fold_batch(family, items, BatchInput(states=states or {}), CONFIG, clock)


# ------------------------------------------------------------------ lateness


def test_a_60_day_old_ticket_opens_state_and_a_60_day_old_answer_is_too_late() -> None:
    old = T0 - 60 * DAY
    tickets = fold("tickets", [ev("ticket.opened", old, 1, ticket_id="T1")], T0)
    assert tickets.outcome.applied == {"ticket.opened": 1}
    assert tickets.outcome.late == 1 and tickets.outcome.too_late == []
    assert tickets.effects.gauges["tickets_open"] == 1  # the backlog counts it ...
    assert tickets.effects.counters == {}  # ... while no bucket holds it
    assert tickets.effects.facts["acme"] == TicketFacts(open=1.0, last=old)
    surveys = fold("surveys", [ev("survey.answered", old, 2, kind="nps", score=3)], T0)
    assert surveys.outcome.applied == {}
    assert surveys.outcome.late == 1
    assert [o.offset for o in surveys.outcome.too_late] == [2]


def test_ninety_days_of_billing_history_under_the_wall_clock_give_todays_mrr() -> None:
    money = {"subscription_id": "B1", "plan": "team", "currency": "USD"}
    history = [
        ev("subscription.started", T0 - 90 * DAY, 1, mrr_cents=10000, **money),
        ev("subscription.changed", T0 - 60 * DAY, 2, mrr_cents=25000, **money),
        ev("subscription.changed", T0 - 2 * DAY, 3, mrr_cents=20000, **money),
    ]
    result = fold("billing", history, T0)
    assert result.outcome.applied == {"subscription.started": 1, "subscription.changed": 2}
    assert result.outcome.late == 2
    assert result.effects.gauges["mrr_cents"] == 20000  # 200.00 now
    assert result.effects.gauges["paying_accounts"] == 1
    day = (3600, int((T0 - 2 * DAY) // 3600))
    assert result.effects.counters[day]["mrr_contraction_cents"] == 5000  # 250 -> 200
    assert all("mrr_new_cents" not in fields for fields in result.effects.counters.values())


def test_stream_time_is_the_partitions_own_and_advances_with_the_batch() -> None:
    # The partition has seen nothing (t = 0): the batch's own events move its clock.
    # First an event at T0, then one 31 days older: too late by then, dead-lettered.
    items = [
        ev("survey.answered", T0, 1, kind="nps", score=9),
        ev("survey.answered", T0 - 31 * DAY, 2, kind="nps", score=9),
    ]
    result = fold("surveys", items, 0.0, advancing=True)
    assert [o.offset for o in result.outcome.too_late] == [2]
    # Read in the other order, the old answer comes first and is applied.
    again = fold("surveys", items[::-1], 0.0, advancing=True)
    assert again.outcome.too_late == []
    assert again.outcome.applied == {"survey.answered": 2}


# ------------------------------------------------------------------ names


def test_ids_containing_the_separator_do_not_share_a_ticket() -> None:
    a = ev("ticket.opened", T0 - 60, 1, account="org:7", ticket_id="42")
    b = ev("ticket.opened", T0 - 30, 2, account="org", ticket_id="7:42")
    result = fold("tickets", [a, b], T0)
    keys = {k for k in result.effects.entities if k.kind == "t"}
    assert keys == {EntityKey("t", "org:7", "42"), EntityKey("t", "org", "7:42")}
    assert len({k.text() for k in keys}) == 2
    assert result.effects.gauges["tickets_open"] == 2


def test_session_members_with_the_separator_stay_apart() -> None:
    data = {"user_id": "u"}
    a = ev("session.started", T0 - 60, 1, account="org:7", session_id="1", **data)
    b = ev("session.started", T0 - 30, 2, account="org", session_id="7:1", **data)
    live = fold("logins", [a, b], T0).effects.live
    assert live == {"5:org:7:1": T0 - 60, "3:org:7:1": T0 - 30}


def test_reserved_plan_names_are_escaped_one_to_one() -> None:
    assert label_of("team") == "team"
    assert label_of("all") == "~all"
    assert label_of("other") == "~other"
    assert label_of("none") == "~none"
    assert label_of("a@b") == "~a~ab"
    assert label_of("~all") == "~~~all"  # cannot meet the escape of "all"
    assert split("mrr_cents@~all") == ("mrr_cents", "~all")


def test_split_by_plan_adds_instead_of_replacing() -> None:
    snapshot = Snapshot(gauges={"mrr_cents": 100.0, "mrr_cents@all": 7.0}, live_sessions=0)
    assert split_by_plan(snapshot)["all"].gauges["mrr_cents"] == 107.0


# ------------------------------------------------------------------ duplicates


def test_the_same_id_with_another_time_counts_once_in_a_batch() -> None:
    first = ev("survey.answered", T0 - 60, 1, kind="nps", score=9, id_="E1")
    again = ev("survey.answered", T0 - 2 * DAY, 2, kind="nps", score=9, id_="E1")
    result = fold("surveys", [first, again], T0)
    assert result.outcome.duplicates == 1
    assert result.outcome.applied == {"survey.answered": 1}
    assert result.seen == {first.digest: T0 - 60}
    later = fold_batch(
        "surveys",
        [again],
        BatchInput(seen={first.digest}),
        CONFIG,
        make_clock(CONFIG, T0),
    )
    assert later.outcome.duplicates == 1


# ------------------------------------------------------------------ memory and facts


def test_a_never_ending_session_folds_times_older_than_the_retention() -> None:
    key = EntityKey("s", "acme", "S1")
    beats = [
        ev("session.heartbeat", T0 - MONTH - 3 * 3600 + 60 * i, i, session_id="S1", user_id="u")
        for i in range(6)
    ]
    first = fold("logins", beats, T0 - MONTH - 3 * 3600 + 600)
    state = first.effects.entities[key]
    assert state is not None
    later = T0 + 3600
    nxt = ev("session.heartbeat", later, 10, session_id="S1", user_id="u")
    result = fold("logins", [nxt], later, states={key: state})
    kept = result.effects.entities[key]
    assert kept is not None
    # cutoff at `later` is T0 - 30d: every old beat is before it; only the newest of
    # them stays, to bound the gap to the next retained time (which is an idle gap).
    times = SESSIONS.decode(kept).times
    assert times == [T0 - MONTH - 3 * 3600 + 300, later]
    assert result.effects.counters == {}  # the idle gap counts nothing


def test_open_ticket_facts_persist_and_closed_ones_may_expire() -> None:
    opened = fold("tickets", [ev("ticket.opened", T0 - 60, 1, ticket_id="T1")], T0)
    assert facts_key("acme") in opened.effects.persistent
    raw = opened.effects.entities[EntityKey("t", "acme", "T1")]
    facts = opened.effects.entities[facts_key("acme")]
    assert raw is not None and facts is not None
    states = {EntityKey("t", "acme", "T1"): raw, facts_key("acme"): facts}
    closed = fold("tickets", [ev("ticket.resolved", T0, 2, ticket_id="T1")], T0, states=states)
    assert facts_key("acme") not in closed.effects.persistent
    assert closed.effects.facts["acme"] == TicketFacts(open=0.0, resolved=1.0, last=T0)


def test_a_ticket_state_decodes_to_typed_fields() -> None:
    result = fold("tickets", [ev("ticket.opened", T0 - 60, 1, ticket_id="T1")], T0)
    raw = result.effects.entities[EntityKey("t", "acme", "T1")]
    assert raw is not None
    state = TICKETS.decode(raw)
    assert state.opened_first == T0 - 60 and state.is_open()


# ------------------------------------------------------------------ usage ratio


def test_usage_ratio_is_paying_active_over_paying_and_at_most_one() -> None:
    def ratio(active: int, paying: float) -> float | None:
        snapshot = Snapshot(
            gauges={"paying_accounts": paying},
            distinct={("paying_active", "1d"): active},
            live_sessions=0,
        )
        got = {(s.name, s.labels): s.value for s in compute(snapshot, CONFIG)}
        return got.get(("cs_product_usage_ratio", (("plan", "all"), ("window", "1d"))))

    assert ratio(3, 4) == 0.75
    assert ratio(5, 4) == 1.0  # a paying account read a moment before the gauge moved
    assert ratio(0, 0) is None


def test_a_churned_billing_account_may_expire_an_active_one_may_not() -> None:
    money = {"subscription_id": "B1", "plan": "team", "currency": "USD"}
    key = EntityKey("b", "acme")
    start = ev("subscription.started", T0 - 40 * DAY, 1, mrr_cents=1000, **money)
    paying = fold("billing", [start], T0)
    assert key in paying.effects.persistent  # active subscription
    state = paying.effects.entities[key]
    assert state is not None
    cancel = ev("subscription.canceled", T0 - 35 * DAY, 2, subscription_id="B1")
    churned = fold("billing", [cancel], T0, states={key: state})
    assert key not in churned.effects.persistent  # nothing active, log compacted
    assert churned.effects.gauges["mrr_cents"] == -1000
