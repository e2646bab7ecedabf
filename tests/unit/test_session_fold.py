"""The logins fold a session at a time gives what the per-event fold gives (no Redis).

:func:`aggregators.batch.fold_each` is the reference: it folds, counts and
re-diffs event by event. Random batches (sessions in several accounts and
plans, times out of order and equal, late and too-late events, duplicate ids,
sessions already stored) must give the same effects and
outcome through :func:`aggregators.batch.fold_by_session`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregators.batch import (
    BatchInput,
    BatchResult,
    Offered,
    Outcome,
    _admit_all,
    _Fold,
    fold_batch,
    fold_by_session,
    fold_each,
    keys_to_load,
    make_clock,
    offer,
)
from aggregators.config import MetricConfig
from aggregators.effects import Counters
from aggregators.entity_keys import SESSION, EntityKey, facts_key
from aggregators.families.sessions import FAMILY, SessionState
from aggregators.plans import PlanEntry, PlanHistory
from schemas import Event, parse_event

CONFIG = MetricConfig()
PLAIN = MetricConfig()
T0 = 1_800_000_000.0
CLOCK = make_clock(PLAIN, T0 + 3600)
DAY = 86400.0
KINDS = ("session.started", "session.heartbeat", "session.heartbeat", "session.ended")


def offered(n: int, kind: str, at: float, account: str, session: str, user: str) -> Offered:
    raw = orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"e{n % 40}",  # ids repeat: duplicates
            "source": "test",
            "type": kind,
            "time": datetime.fromtimestamp(at, UTC).isoformat(),
            "data": {"account_id": account, "session_id": session, "user_id": user},
        }
    )
    parsed = parse_event(raw, now=T0 + 10 * DAY)
    assert isinstance(parsed, Event), parsed
    return offer(n, parsed)


event_specs = st.tuples(
    st.sampled_from(KINDS),
    st.one_of(
        st.floats(min_value=-600, max_value=7200).map(round),  # near now, out of order
        st.sampled_from([0.0, 30.0, 30.0, -45 * DAY]),  # equal times; too late
        st.floats(min_value=-9 * DAY, max_value=0),  # late for small windows
    ),
    st.sampled_from(["acme", "globex"]),
    st.sampled_from(["s1", "s2", "s3"]),
    st.sampled_from(["u1", "u2"]),
)

stored_times = st.lists(st.floats(min_value=-32 * DAY, max_value=3600).map(round), max_size=6)


def stored_states(times_by_session: dict[str, list[float]]) -> dict[EntityKey, str]:
    return {
        EntityKey(SESSION, "acme", session): FAMILY.encode(
            SessionState("pro", sorted(T0 + t for t in times))
        )
        for session, times in times_by_session.items()
        if times
    }


def fold_both(
    items: list[Offered], inputs: BatchInput, advancing: bool
) -> tuple[BatchResult, BatchResult]:
    clock = make_clock(CONFIG, T0 + 3600, advancing=advancing)
    reference = fold_each("logins", items, inputs, CONFIG, clock)
    grouped = fold_by_session("logins", items, inputs, CONFIG, clock)
    return reference, grouped


def flat(counters: Counters) -> dict[tuple[int, int, str], float]:
    """(granularity, bucket, field) -> amount, zeros left out (the store skips them)."""
    return {(*bucket, f): v for bucket, fields in counters.items() for f, v in fields.items() if v}


def assert_same(reference: BatchResult, grouped: BatchResult) -> None:
    ref, got = reference.effects, grouped.effects
    assert flat(got.counters) == pytest.approx(flat(ref.counters), abs=1e-9)
    assert got.last_seen == ref.last_seen
    assert got.entities == ref.entities
    assert got.live == ref.live
    assert got.facts == ref.facts
    assert got.persistent == ref.persistent
    assert grouped.outcome == reference.outcome
    assert grouped.seen == reference.seen


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(event_specs, max_size=40),
    stored=st.dictionaries(st.sampled_from(["s1", "s2"]), stored_times),
    plans=st.sampled_from(
        [
            {},
            {"acme": [(T0 - DAY, 0, "pro")]},
            {"acme": [(T0 - DAY, 0, "pro")], "globex": [(T0 - DAY, 1, "team")]},
            # a plan change inside the sessions' span: events split by their own time
            {"acme": [(T0 - DAY, 0, "basic"), (T0 + 3600, 1, "pro")]},
        ]
    ),
    advancing=st.booleans(),
)
def test_a_session_at_a_time_equals_event_by_event(
    specs: list[tuple[str, float, str, str, str]],
    stored: dict[str, list[float]],
    plans: dict[str, list[PlanEntry]],
    advancing: bool,
) -> None:
    items = [offered(n, kind, T0 + at, *rest) for n, (kind, at, *rest) in enumerate(specs)]
    inputs = BatchInput(
        states=stored_states(stored),
        seen={items[0].digest} if items else set(),
        plans=PlanHistory(plans),
    )
    assert_same(*fold_both(items, inputs, advancing))


clean_specs = st.tuples(
    st.sampled_from(KINDS),
    st.floats(min_value=-600, max_value=2 * DAY).map(round),  # stream time may move a day
    st.sampled_from(["acme", "globex"]),
    st.sampled_from(["s1", "s2", "s3"]),
    st.sampled_from(["u1", "u2"]),
)


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(clean_specs, min_size=1, max_size=39),
    stored=st.dictionaries(st.sampled_from(["s1", "s2"]), stored_times),
    advancing=st.booleans(),
)
def test_a_usual_batch_admitted_at_once_equals_event_by_event(
    specs: list[tuple[str, float, str, str, str]],
    stored: dict[str, list[float]],
    advancing: bool,
) -> None:
    """No repeated id, nothing late: the whole-batch admission, same result."""
    items = [offered(n, kind, T0 + at, *rest) for n, (kind, at, *rest) in enumerate(specs, 8)]
    keys_to_load("logins", items)
    inputs = BatchInput(states=stored_states(stored))
    assert _admit_all(_Fold(FAMILY, inputs, PLAIN), items, CLOCK, Outcome(), {}) is not None
    clock = make_clock(PLAIN, T0 + 3600, advancing=advancing)
    reference = fold_each("logins", items, inputs, PLAIN, clock)
    assert_same(reference, fold_by_session("logins", items, inputs, PLAIN, clock))


def test_logins_take_the_session_fold() -> None:
    """fold_batch sends logins a session at a time, and an appended heartbeat adds
    exactly its own gap to the time in app (hand-computed: 100 s after 0 s)."""
    items = [
        offered(1, "session.heartbeat", T0 + 100, "acme", "s1", "u1"),
        offered(2, "session.heartbeat", T0 + 2000 + 100, "acme", "s1", "u1"),
    ]
    stored = {EntityKey(SESSION, "acme", "s1"): FAMILY.encode(SessionState("none", [T0]))}
    clock = make_clock(CONFIG, T0 + 3600)
    result = fold_batch("logins", items, BatchInput(states=stored), CONFIG, clock)
    minute = result.effects.counters[(60, int((T0 + 100) // 60))]
    assert minute["time_in_app"] == 100.0
    # the second gap (2000 s) is longer than the idle timeout (1800 s): no time in app
    total = sum(b.get("time_in_app", 0.0) for b in result.effects.counters.values())
    assert total == 100 * len(CONFIG.granularities)


def test_an_event_of_another_family_on_the_logins_topic_updates_no_session() -> None:
    """A topic named like no family takes every type: a ticket event on the logins
    family has no session, is applied, and counts nothing (as event by event)."""
    raw = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "t1",
            "source": "test",
            "type": "ticket.opened",
            "time": datetime.fromtimestamp(T0, UTC).isoformat(),
            "data": {"account_id": "acme", "ticket_id": "T1", "channel": "email"},
        }
    )
    ticket = parse_event(raw, now=T0 + 10)
    assert isinstance(ticket, Event), ticket
    items = [offer(1, ticket), offered(2, "session.started", T0, "acme", "s1", "u1")]
    wanted = keys_to_load("logins", items)
    assert wanted == {facts_key("acme"), EntityKey(SESSION, "acme", "s1")}
    assert [item.key for item in items] == [None, EntityKey(SESSION, "acme", "s1")]
    reference, grouped = fold_both(items, BatchInput(), advancing=False)
    assert_same(reference, grouped)
    assert grouped.outcome.applied == {"ticket.opened": 1, "session.started": 1}
