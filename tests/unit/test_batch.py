"""The pure batch planner against hand-computed effects (no Redis)."""

from __future__ import annotations

from typing import Any

import orjson

from aggregators.batch import BatchInput, Offered, event_digest, fold_batch, make_clock, offer
from aggregators.config import MetricConfig
from aggregators.entity_keys import EntityKey
from aggregators.families.billing import FAMILY as BILLING
from schemas import Event, parse_event

CONFIG = MetricConfig()
T0 = 1_800_000_000.0  # a multiple of 3600: bucket edges are easy to see
NOW = T0 + 3600


def ev(event_type: str, offset: float, n: int, **data: Any) -> Offered:
    raw = orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"e{n}",
            "source": "test",
            "type": event_type,
            "time": _iso(T0 + offset),
            "data": {"account_id": "acme", **data},
        }
    )
    parsed = parse_event(raw, now=NOW + 10)
    assert isinstance(parsed, Event), parsed
    return offer(n, parsed)


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


def plan(
    family: str,
    items: list[Offered],
    states: dict[EntityKey, str] | None = None,
    seen: set[str] | None = None,
):  # type: ignore[no-untyped-def]
    inputs = BatchInput(states=states or {}, seen=seen or set())
    return fold_batch(family, items, inputs, CONFIG, make_clock(CONFIG, NOW))


TICKET_T1 = EntityKey("t", "acme", "T1")
SESSION_S1 = EntityKey("s", "acme", "S1")
ACME_BILLING = EntityKey("b", "acme")


def minute(offset: float) -> tuple[int, int]:
    return 60, int((T0 + offset) // 60)


def test_fcr_counted_then_retracted_by_a_late_reopen() -> None:
    first = plan(
        "tickets",
        [
            ev("ticket.opened", 100, 1, ticket_id="T1"),
            ev("ticket.replied", 160, 2, ticket_id="T1", author="agent", agent_id="ana"),
            ev("ticket.resolved", 220, 3, ticket_id="T1"),
        ],
    )
    counters = first.effects.counters
    assert counters[minute(100)]["tickets_opened"] == 1
    assert counters[minute(220)]["tickets_resolved"] == 1
    assert counters[minute(220)]["fcr_resolved"] == 1
    assert counters[minute(160)]["first_response_sum"] == 60
    assert counters[minute(220)]["resolution_sum"] == 120
    assert first.effects.gauges.get("tickets_open", 0) == 0  # opened and resolved in one batch
    state = first.effects.entities[TICKET_T1]
    assert state is not None
    second = plan("tickets", [ev("ticket.reopened", 400, 4, ticket_id="T1")], {TICKET_T1: state})
    assert second.effects.counters[minute(220)]["fcr_resolved"] == -1
    assert second.effects.counters[(3600, int((T0 + 220) // 3600))]["fcr_resolved"] == -1
    assert second.effects.gauges["tickets_open"] == 1


def test_a_late_heartbeat_splits_the_gap_it_falls_into() -> None:
    session = {"session_id": "S1", "user_id": "u1"}
    first = plan(
        "logins",
        [
            ev("session.started", 0, 1, **session),
            ev("session.heartbeat", 60, 2, **session),
            ev("session.heartbeat", 180, 3, **session),
        ],
    )
    assert first.effects.counters[minute(60)]["time_in_app"] == 60
    assert first.effects.counters[minute(180)]["time_in_app"] == 120
    state = first.effects.entities[SESSION_S1]
    assert state is not None
    late = plan("logins", [ev("session.heartbeat", 120, 4, **session)], {SESSION_S1: state})
    assert late.effects.counters[minute(120)]["time_in_app"] == 60
    assert late.effects.counters[minute(180)]["time_in_app"] == -60  # 120 retracted, 60 added


def test_an_idle_gap_counts_nothing() -> None:
    session = {"session_id": "S2", "user_id": "u1"}
    result = plan(
        "logins",
        [
            ev("session.started", 0, 1, **session),
            ev("session.heartbeat", 1801, 2, **session),  # longer than the 1800 s idle timeout
        ],
    )
    assert all(c.get("time_in_app", 0) == 0 for c in result.effects.counters.values())


def test_mrr_movements_and_a_stale_change() -> None:
    money = {"subscription_id": "B1", "plan": "team", "currency": "USD"}
    result = plan(
        "billing",
        [
            ev("subscription.started", 0, 1, mrr_cents=10000, **money),
            ev("subscription.changed", 600, 2, mrr_cents=15000, **money),
            ev(
                "subscription.changed", 300, 3, mrr_cents=99900, **money
            ),  # older than applied: stale
            ev("subscription.canceled", 1200, 4, subscription_id="B1"),
        ],
    )
    hour = (3600, int(T0 // 3600))
    counters = result.effects.counters[hour]
    assert counters["mrr_new_cents"] == 10000
    assert counters["mrr_expansion_cents"] == 5000
    assert counters["mrr_churned_cents"] == 15000
    assert counters["accounts_new"] == 1 and counters["accounts_churned"] == 1
    assert result.outcome.stale == 1
    assert result.effects.gauges.get("mrr_cents", 0) == 0
    assert result.effects.gauges.get("paying_accounts", 0) == 0


def test_duplicates_and_late_events_are_not_applied() -> None:
    known = ev("survey.answered", 10, 1, kind="nps", score=9)
    again = ev("survey.answered", 20, 2, kind="nps", score=3)
    old = ev("survey.answered", -40 * 86400, 3, kind="nps", score=10)
    result = plan("surveys", [known, again, again, old], seen={event_digest("e1")})
    assert result.outcome.duplicates == 2  # e1 seen before, e2 repeated in the batch
    assert [o.offset for o in result.outcome.too_late] == [3]
    assert result.outcome.late == 1
    assert result.outcome.applied == {"survey.answered": 1}
    assert result.effects.counters[minute(20)]["nps_detractors"] == 1


def test_compacting_old_log_entries_keeps_movements_and_state() -> None:
    money = {"subscription_id": "B1", "plan": "team", "currency": "USD"}
    first = plan("billing", [ev("subscription.started", 0, 1, mrr_cents=10000, **money)])
    state = first.effects.entities[ACME_BILLING]
    assert state is not None
    # 31 days later the start is older than the retention: it folds into the base ...
    later = T0 + 31 * 86400
    config_clock = make_clock(CONFIG, later + 60)
    raw = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "e9",
            "source": "test",
            "type": "subscription.changed",
            "time": _iso(later),
            "data": {"account_id": "acme", "mrr_cents": 12000, **money},
        }
    )
    change = parse_event(raw, now=later + 60)
    assert isinstance(change, Event)
    inputs = BatchInput(states={ACME_BILLING: state})
    result = fold_batch("billing", [offer(9, change)], inputs, CONFIG, config_clock)
    raw = result.effects.entities[ACME_BILLING]
    assert raw is not None
    compacted = BILLING.decode(raw)
    assert [e.op for e in compacted.log] == ["change"]
    assert compacted.ever_paid is True
    # ... and the change is an expansion (not "new"), with no retraction of the old "new"
    hour = (3600, int(later // 3600))
    assert result.effects.counters[hour]["mrr_expansion_cents"] == 2000
    assert "mrr_new_cents" not in result.effects.counters[(3600, int(T0 // 3600))]
