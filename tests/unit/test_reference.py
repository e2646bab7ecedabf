"""Hand-computed scenarios that check the reference implementation itself.

Every expected number is worked out in the comments from the spec and
docs/decisions.md, so a failure here means the reference (not cspulse) is wrong.
All times are offsets from T = 2026-11-23T00:00:00Z, a multiple of every
default granularity. With the defaults, at t = T the windows hold:
1h  (g=60):   T-3540 <= ts < T+60
1d  (g=300):  T-86100 <= ts < T+300
7d  (g=3600): T-601200 <= ts < T+3600
30d (g=3600): T-2588400 <= ts < T+3600
and an event is too late when ts < T-2592000.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.reference import DEFAULT_WINDOWS, MetricKey, RefConfig, compute, key, parse_time

T = 1_795_392_000
HOUR, DAY = 3600, 86400
WINDOWS = tuple(DEFAULT_WINDOWS)
_ids: Iterator[int] = itertools.count()
Raw = dict[str, Any]


def iso(ts: float) -> str:
    """RFC 3339 in UTC with a Z suffix, as most producers send it."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def ev(type_: str, at: float, account: str = "acme", id_: str | None = None, **data: Any) -> Raw:
    """A valid CloudEvent at T + at (seconds)."""
    return {
        "specversion": "1.0",
        "id": id_ if id_ is not None else f"e{next(_ids)}",
        "source": "test",
        "type": type_,
        "time": iso(T + at),
        "data": {"account_id": account, **data},
    }


def per_window(metrics: dict[MetricKey, float], name: str, **labels: str) -> dict[str, float]:
    """A windowed metric as {window: value}, leaving out windows where it is absent."""
    out = {}
    for w in WINDOWS:
        k = key(name, window=w, **labels)
        if k in metrics:
            out[w] = metrics[k]
    return out


# --------------------------------------------------------------------------- basics


def test_parse_time_is_exact_and_honours_offsets() -> None:
    assert parse_time("2026-11-23T00:00:00Z") == T
    assert parse_time("2026-11-23T02:00:00+02:00") == T
    assert parse_time("2026-11-22T19:30:00.25-04:30") == T + 0.25
    assert parse_time("2026-11-23T00:00:00.123456789Z") * 10**9 == T * 10**9 + 123456789


def test_no_events_gives_zero_counts_and_no_ratios() -> None:
    m = compute([], T)
    counts = [
        "cs_tickets_opened",
        "cs_tickets_resolved",
        "cs_active_users",
        "cs_active_accounts",
        "cs_sessions",
        "cs_time_in_app_seconds",
        "cs_churned_accounts",
        "cs_payment_failures",
    ]
    expected = {key(n, window=w): 0.0 for n in counts for w in WINDOWS}
    for kind in ("new", "reactivation", "expansion", "contraction", "churned"):
        for w in WINDOWS:
            expected[key("cs_mrr_movement", currency="USD", kind=kind, window=w)] = 0.0
    for name in ("cs_tickets_open", "cs_sessions_active", "cs_paying_accounts"):
        expected[key(name)] = 0.0
    expected[key("cs_mrr", currency="USD")] = 0.0
    for w in WINDOWS:
        expected[key("cs_mrr_start", currency="USD", window=w)] = 0.0
        for name in ("cs_first_response_seconds", "cs_resolution_seconds"):
            for le in LE:
                expected[key(f"{name}_bucket", le=le, window=w)] = 0.0
            expected[key(f"{name}_gcount", window=w)] = 0.0
            expected[key(f"{name}_gsum", window=w)] = 0.0
    assert m == expected


LE = ("60.0", "300.0", "900.0", "1800.0", "3600.0", "14400.0", "28800.0", "86400.0")
LE += ("259200.0", "+Inf")


def buckets(m: dict[MetricKey, float], name: str, window: str) -> list[float]:
    """A gauge histogram's cumulative bucket counts in ``le`` order."""
    return [m[key(f"{name}_bucket", le=le, window=window)] for le in LE]


def test_window_edges_future_and_too_late() -> None:
    # Ticket opened at each offset -> which windows count it (see module docstring).
    offsets = {
        -3541: "1d 7d 30d",
        -3540: "1h 1d 7d 30d",
        59: "1h 1d 7d 30d",  # future of t but in the current 1h bucket
        60: "1d 7d 30d",  # next minute bucket, yet in the current 5-minute one
        300: "7d 30d",
        -86100: "1d 7d 30d",
        -86101: "7d 30d",
        -601200: "7d 30d",
        -601201: "30d",
        -2592000: "",  # in no window, but retained (not too late)
        -2592001: None,  # too late: in no bucket, but the ticket is open all the same
    }
    events = [ev("ticket.opened", at, ticket_id=f"t{at}") for at in offsets]
    m = compute(events, T)
    expected = {w: sum(w in (v or "").split() for v in offsets.values()) for w in WINDOWS}
    assert per_window(m, "cs_tickets_opened") == {"1h": 2, "1d": 5, "7d": 8, "30d": 9}
    assert per_window(m, "cs_tickets_opened") == expected
    # Backlog is state: all 11 tickets, the too-late one included (metrics.md "Lateness").
    assert m[key("cs_tickets_open")] == 11


def test_lateness_drops_buckets_but_never_current_state() -> None:
    # Started exactly at T-30d: retained at t=T, too late at t=T+1h. Either way it
    # makes today's MRR; only state-free events (a survey answer) vanish when too late.
    events = [
        ev(
            "subscription.started",
            -2592000,
            subscription_id="s",
            plan="p",
            mrr_cents=10000,
            currency="USD",
        ),
        ev("survey.answered", -2592000, kind="nps", score=10),
    ]
    for t in (T, T + HOUR):
        m = compute(events, t)
        assert m[key("cs_mrr", currency="USD")] == 100.0
        assert m[key("cs_paying_accounts")] == 1
        assert per_window(m, "cs_mrr_movement", currency="USD", kind="new")["30d"] == 0.0
        assert per_window(m, "cs_nps") == {}  # the answer is in no window either way


def test_a_60_day_old_ticket_is_open_and_a_60_day_old_answer_is_gone() -> None:
    events = [
        ev("ticket.opened", -60 * DAY, ticket_id="old"),
        ev("survey.answered", -60 * DAY, kind="csat", score=5),
    ]
    m = compute(events, T)
    assert m[key("cs_tickets_open")] == 1  # state applied ...
    assert per_window(m, "cs_tickets_opened") == {w: 0 for w in WINDOWS}  # ... no bucket
    assert per_window(m, "cs_csat_ratio") == {}


def test_a_backfill_gives_the_same_numbers_in_any_partition_order() -> None:
    # Two "partitions" (accounts) read one after the other, either way round: with the
    # state-changing events of the older one too late by then, the numbers agree.
    acme = [
        ev(
            "subscription.started",
            -40 * DAY,
            "acme",
            subscription_id="a",
            plan="p",
            mrr_cents=5000,
            currency="USD",
        ),
        ev("ticket.opened", -35 * DAY, "acme", ticket_id="A1"),
        ev(
            "subscription.changed",
            -HOUR,
            "acme",
            subscription_id="a",
            plan="p",
            mrr_cents=7000,
            currency="USD",
        ),
    ]
    globex = [
        ev(
            "subscription.started",
            -2 * HOUR,
            "globex",
            subscription_id="g",
            plan="p",
            mrr_cents=3000,
            currency="USD",
        ),
        ev("ticket.opened", -HOUR, "globex", ticket_id="G1"),
    ]
    first, second = compute(acme + globex, T), compute(globex + acme, T)
    assert first == second
    assert first[key("cs_mrr", currency="USD")] == 100.0
    assert first[key("cs_tickets_open")] == 2
    assert per_window(first, "cs_mrr_movement", currency="USD", kind="expansion")["1d"] == 20.0


def test_duplicate_ids_count_once_first_wins() -> None:
    events = [
        ev("ticket.opened", -100, id_="dup", ticket_id="first"),
        ev("ticket.opened", -50, id_="dup", ticket_id="second"),  # same id: dropped
        ev("cost.recorded", -100, id_="c", amount_cents=500, currency="USD", category="tooling"),
        ev("cost.recorded", -100, id_="c", amount_cents=500, currency="USD", category="tooling"),
        ev("session.started", -100, id_="s", session_id="s1", user_id="u1"),
        ev("session.started", -100, id_="s", session_id="s1", user_id="u1"),
        ev(
            "subscription.started",
            -100,
            id_="b",
            subscription_id="x",
            plan="p",
            mrr_cents=1000,
            currency="USD",
        ),
    ]
    m = compute(events, T)
    assert m[key("cs_tickets_opened", window="1h")] == 1
    assert m[key("cs_tickets_open")] == 1
    assert m[key("cs_sessions", window="1h")] == 1
    # One paying account; cost 5.00 (not 10.00) per paying account.
    assert m[key("cs_retention_cost", currency="USD", window="1h")] == 5.0


# --------------------------------------------------------------------------- support


def fcr_events(with_reopen: bool = True) -> list[Raw]:
    """Five tickets resolved inside the last hour (see test_fcr_and_durations)."""
    r = "ticket.replied"
    events = [
        # A: one agent reply, resolved -> FCR. response 100, resolution 200.
        ev("ticket.opened", -1000, ticket_id="A"),
        ev(r, -900, ticket_id="A", author="agent", agent_id="ana"),
        ev("ticket.resolved", -800, ticket_id="A"),
        # B: second agent reply dated before resolution arrives late -> not FCR.
        # response 50 (first agent reply), resolution 300.
        ev("ticket.opened", -1000, ticket_id="B"),
        ev(r, -950, ticket_id="B", author="agent", agent_id="ana"),
        ev("ticket.resolved", -700, ticket_id="B"),
        ev(r, -900, ticket_id="B", author="agent", agent_id="bob"),
        # C: reopened, resolved again -> not FCR; counted at first resolution.
        # response 400, resolution 500 (to the first resolution).
        ev("ticket.opened", -1000, ticket_id="C"),
        ev(r, -600, ticket_id="C", author="agent", agent_id="ana"),
        ev("ticket.resolved", -500, ticket_id="C"),
        ev("ticket.resolved", -300, ticket_id="C"),
        # D: customer reply ignored, agent reply after resolution ignored -> FCR.
        # response 200, resolution 300.
        ev("ticket.opened", -1000, ticket_id="D"),
        ev(r, -990, ticket_id="D", author="customer"),
        ev(r, -800, ticket_id="D", author="agent", agent_id="ana"),
        ev("ticket.resolved", -700, ticket_id="D"),
        ev(r, -650, ticket_id="D", author="agent", agent_id="ana"),
        # E: opened never arrived -> FCR numerator and denominator, no averages.
        ev(r, -600, ticket_id="E", author="agent", agent_id="ana"),
        ev("ticket.resolved", -500, ticket_id="E"),
    ]
    if with_reopen:
        events.append(ev("ticket.reopened", -400, ticket_id="C"))
    return events


def test_fcr_and_durations() -> None:
    m = compute(fcr_events(), T)
    for w in WINDOWS:
        assert m[key("cs_tickets_opened", window=w)] == 4  # A-D
        assert m[key("cs_tickets_resolved", window=w)] == 5  # A-E
        # FCR: A, D, E out of 5.
        assert m[key("cs_fcr_ratio", window=w)] == pytest.approx(0.6)
        # (100 + 50 + 400 + 200) / 4
        assert m[key("cs_first_response_seconds_avg", window=w)] == pytest.approx(187.5)
        # (200 + 300 + 500 + 300) / 4
        assert m[key("cs_resolution_seconds_avg", window=w)] == pytest.approx(325.0)
    assert m[key("cs_tickets_open")] == 0  # C's latest is its second resolution


def test_response_time_histograms() -> None:
    m = compute(fcr_events(), T)
    for w in WINDOWS:
        # first responses 100, 50, 400, 200: 50 <= 60; 100, 200 <= 300; 400 <= 900.
        assert buckets(m, "cs_first_response_seconds", w) == [1, 3] + [4] * 8
        assert m[key("cs_first_response_seconds_gcount", window=w)] == 4
        assert m[key("cs_first_response_seconds_gsum", window=w)] == 750
        # resolutions 200, 300, 500, 300 (E has no opening): le is inclusive.
        assert buckets(m, "cs_resolution_seconds", w) == [0, 3] + [4] * 8
        assert m[key("cs_resolution_seconds_gsum", window=w)] == 1300


def test_late_first_reply_moves_a_ticket_between_buckets() -> None:
    opened = ev("ticket.opened", -20000, ticket_id="L")
    slow = ev("ticket.replied", -5000, ticket_id="L", author="agent", agent_id="ana")
    fast = ev("ticket.replied", -19950, ticket_id="L", author="agent", agent_id="ana")
    # 15000 s: first bucket at le=28800.
    assert (
        buckets(compute([opened, slow], T), "cs_first_response_seconds", "1d") == [0] * 6 + [1] * 4
    )
    # A reply dated 50 s after opening arrives late: the ticket moves to le=60.
    moved = compute([opened, slow, fast], T)
    assert buckets(moved, "cs_first_response_seconds", "1d") == [1] * 10
    assert moved[key("cs_first_response_seconds_gsum", window="1d")] == 50


def test_reopen_retracts_fcr() -> None:
    # Without the reopen C is first-contact-resolved too: 4/5.
    assert compute(fcr_events(with_reopen=False), T)[key("cs_fcr_ratio", window="1h")] == 0.8
    # The reopen arrives last yet takes C out of the numerator: 3/5.
    assert compute(fcr_events(), T)[key("cs_fcr_ratio", window="1h")] == pytest.approx(0.6)


def test_negative_first_response_is_clamped() -> None:
    events = [
        ev("ticket.replied", -500, ticket_id="X", author="agent", agent_id="ana"),
        ev("ticket.opened", -400, ticket_id="X"),
    ]
    assert compute(events, T)[key("cs_first_response_seconds_avg", window="1h")] == 0.0


def test_agent_reply_at_resolution_time_is_not_before_it() -> None:
    # One reply strictly before the resolution, one at the same instant: still FCR.
    events = [
        ev("ticket.opened", -1000, ticket_id="K"),
        ev("ticket.replied", -900, ticket_id="K", author="agent", agent_id="ana"),
        ev("ticket.replied", -800, ticket_id="K", author="agent", agent_id="ana"),
        ev("ticket.resolved", -800, ticket_id="K"),
    ]
    assert compute(events, T)[key("cs_fcr_ratio", window="1h")] == 1.0


def test_backlog() -> None:
    events = [
        ev("ticket.opened", -200, ticket_id="F"),  # open
        ev("ticket.opened", -100, ticket_id="G"),  # tie with resolution: closed
        ev("ticket.resolved", -100, ticket_id="G"),
        ev("ticket.opened", -300, ticket_id="H"),  # reopened last: open
        ev("ticket.resolved", -250, ticket_id="H"),
        ev("ticket.reopened", -200, ticket_id="H"),
        ev("ticket.opened", -50, ticket_id="I"),  # opened dated after resolution: open
        ev("ticket.resolved", -100, ticket_id="I"),
        ev("ticket.replied", -100, ticket_id="J", author="customer"),  # no lifecycle event
    ]
    assert compute(events, T)[key("cs_tickets_open")] == 3  # F, H, I


# --------------------------------------------------------------------------- usage


def usage_events() -> list[Raw]:
    """Five sessions; gaps noted as (seconds counted @ time of the later event)."""
    hb, st, end = "session.heartbeat", "session.started", "session.ended"
    return [
        # S1 u1/a1: 200 @-2800, 2100 > idle -> 0 @-700, 300 @-400; -2800 arrives last.
        ev(st, -3000, "a1", session_id="S1", user_id="u1", platform="web"),
        ev(hb, -700, "a1", session_id="S1", user_id="u1"),
        ev(end, -400, "a1", session_id="S1", user_id="u1"),
        ev(hb, -2800, "a1", session_id="S1", user_id="u1"),
        # S2 u2/a2: started outside 1h; 100 @-3500 (inside 1h); exactly idle 1800 @-1700.
        ev(st, -3600, "a2", session_id="S2", user_id="u2"),
        ev(hb, -3500, "a2", session_id="S2", user_id="u2"),
        ev(end, -1700, "a2", session_id="S2", user_id="u2"),
        # S3 u1/a1: latest event strictly within idle of t -> active.
        ev(st, -1799, "a1", session_id="S3", user_id="u1"),
        # S4 u3/a1: latest event exactly idle before t -> not active.
        ev(st, -1800, "a1", session_id="S4", user_id="u3"),
        # S5 u4/a3: ten days ago, 60 s.
        ev(st, -10 * DAY, "a3", session_id="S5", user_id="u4"),
        ev(hb, -10 * DAY + 60, "a3", session_id="S5", user_id="u4"),
    ]


def test_usage() -> None:
    m = compute(usage_events(), T)
    # 1h/1d/7d: users u1,u2,u3; accounts a1,a2; started S1,S3,S4 (+S2 from 1d on);
    # time 200+0+300+100+1800 = 2400.  30d adds S5: u4, a3, 60 s.
    assert per_window(m, "cs_active_users") == {"1h": 3, "1d": 3, "7d": 3, "30d": 4}
    assert per_window(m, "cs_active_accounts") == {"1h": 2, "1d": 2, "7d": 2, "30d": 3}
    assert per_window(m, "cs_sessions") == {"1h": 3, "1d": 4, "7d": 4, "30d": 5}
    assert per_window(m, "cs_time_in_app_seconds") == {
        "1h": 2400,
        "1d": 2400,
        "7d": 2400,
        "30d": 2460,
    }
    assert per_window(m, "cs_time_in_app_seconds_per_user") == {
        "1h": 800,
        "1d": 800,
        "7d": 800,
        "30d": 615,
    }
    assert m[key("cs_sessions_active")] == 1  # S3
    assert m[key("cs_stickiness_ratio")] == 0.75  # 3 / 4
    assert per_window(m, "cs_product_usage_ratio") == {}  # no paying accounts


def test_product_usage_ratio_uses_paying_accounts_now() -> None:
    subs = [
        ev(
            "subscription.started",
            -5000,
            acct,
            subscription_id=f"s-{acct}",
            plan="p",
            mrr_cents=1000,
            currency="USD",
        )
        for acct in ("a1", "a2")
    ]
    m = compute(usage_events() + subs, T)
    # paying accounts active / 2 paying: a1 and a2 are active in every window; a3 is
    # active in 30d too but does not pay, so it counts on neither side (never above 1).
    assert per_window(m, "cs_product_usage_ratio") == {"1h": 1.0, "1d": 1.0, "7d": 1.0, "30d": 1.0}
    assert per_window(m, "cs_active_accounts")["30d"] == 3


# --------------------------------------------------------------------------- surveys


def survey_events() -> list[Raw]:
    """Answers inside the last hour, plus one NPS 0 two hours ago (1d and longer)."""

    def nps(at: float, score: int, **extra: Any) -> Raw:
        return ev("survey.answered", at, kind="nps", score=score, **extra)

    def csat(score: int, scale: int | None = None, **extra: Any) -> Raw:
        scale_field: Raw = {} if scale is None else {"scale_max": scale}
        return ev("survey.answered", -60, kind="csat", score=score, **scale_field, **extra)

    def ces(score: int, **extra: Any) -> Raw:
        return ev("survey.answered", -60, kind="ces", score=score, **extra)

    offset_answer = nps(0, 10, comment="I love this product, great support!")
    offset_answer["time"] = "2026-11-23T01:59:00+02:00"  # T-60, given with an offset
    return [
        offset_answer,
        nps(-60, 10),
        nps(-60, 9, comment="   "),  # blank: no feedback
        nps(-60, 8, comment=""),
        nps(-60, 6),
        nps(-2 * HOUR, 0),
        csat(4, 5),  # satisfied (>= 4 of 5)
        csat(3, 5, comment="This is terrible and slow."),
        csat(6, 7),  # satisfied (>= 6 of 7)
        csat(7, 10),
        csat(8, 10),  # satisfied (>= 8 of 10)
        csat(5),  # default scale 5: satisfied
        ces(2),
        ces(5, comment="The invoice arrived on Tuesday."),
        ces(7),
    ]


def test_surveys() -> None:
    m = compute(survey_events(), T)
    assert m[key("cs_survey_responses", kind="nps", window="1h")] == 5
    assert m[key("cs_survey_responses", kind="nps", window="1d")] == 6
    assert m[key("cs_survey_responses", kind="csat", window="1h")] == 6
    assert m[key("cs_survey_responses", kind="ces", window="1h")] == 3
    # 1h: promoters 10,10,9; passive 8; detractor 6 -> 100 * (3-1) / 5 = 40.
    assert m[key("cs_nps", window="1h")] == pytest.approx(40.0)
    # 1d adds a 0: 100 * (3-2) / 6.
    assert m[key("cs_nps", window="1d")] == pytest.approx(100 / 6)
    assert m[key("cs_csat_ratio", window="1h")] == pytest.approx(4 / 6)
    assert m[key("cs_ces_avg", window="1h")] == pytest.approx(14 / 3)  # (2+5+7)/3
    comments = {
        s: m.get(key("cs_feedback_comments", sentiment=s, window="1h"))
        for s in ("positive", "neutral", "negative")
    }
    assert comments == {"positive": 1, "neutral": 1, "negative": 1}


def test_csat_thresholds_are_configurable() -> None:
    config = RefConfig(csat_thresholds={5: 5, 7: 6, 10: 8})
    # Satisfied now: 6/7, 8/10, 5/5 -> 3 of 6.
    assert compute(survey_events(), T, config)[key("cs_csat_ratio", window="1h")] == 0.5


def test_survey_kinds_without_answers_are_absent() -> None:
    m = compute([ev("survey.answered", -60, kind="ces", score=3)], T)
    assert m[key("cs_ces_avg", window="1h")] == 3
    assert key("cs_nps", window="1h") not in m
    assert key("cs_csat_ratio", window="1h") not in m
    assert key("cs_survey_responses", kind="nps", window="1h") not in m
    assert not any(name == "cs_feedback_comments" for name, _ in m)


# --------------------------------------------------------------------------- revenue


def sub(type_: str, at: float, account: str, sub_id: str, **data: Any) -> Raw:
    """A billing event for one subscription (currency always the reporting one)."""
    if "mrr_cents" in data:
        data = {"plan": "p", "currency": "USD", **data}
    return ev(type_, at, account, subscription_id=sub_id, **data)


def revenue_events() -> list[Raw]:
    """Accounts x, y, z, w, v; movements noted as kind amount @ offset."""
    return [
        # x: new 100 @-3000, expansion 50 @-2500, contraction 30 @-2000,
        #    churned 120 @-1500, reactivation 50 @-1000 (another subscription).
        sub("subscription.started", -3000, "x", "x1", mrr_cents=10000),
        sub("subscription.changed", -2500, "x", "x1", mrr_cents=15000),
        sub("subscription.changed", -2000, "x", "x1", mrr_cents=12000),
        sub("subscription.canceled", -1500, "x", "x1"),
        sub("subscription.started", -1000, "x", "x2", mrr_cents=5000),
        ev("invoice.failed", -100, "x", invoice_id="i1", amount_cents=5000, currency="USD"),
        ev("invoice.paid", -100, "x", invoice_id="i2", amount_cents=5000, currency="USD"),
        # y: new 200 @-29d (30d only); renewed @-100.
        sub("subscription.started", -29 * DAY, "y", "y1", mrr_cents=20000),
        sub("subscription.renewed", -100, "y", "y1"),
        # z: new 300 @-10d; lapsed at term end: churned 300 @-2d.
        sub("subscription.started", -10 * DAY, "z", "z1", mrr_cents=30000),
        sub("subscription.canceled", -2 * DAY, "z", "z1", at_term_end=True),
        # w: trial (0 MRR) @-3d, converted: new 80 @-2d.
        sub("subscription.started", -3 * DAY, "w", "w1", mrr_cents=9900, trial=True),
        sub("trial.converted", -2 * DAY, "w", "w1", mrr_cents=8000),
        # v: trial @-5d, expired @-1d (just outside 1d): no movement.
        sub("subscription.started", -5 * DAY, "v", "v1", mrr_cents=5000, trial=True),
        sub("trial.expired", -DAY, "v", "v1"),
        ev(
            "cost.recorded", -10 * DAY, "cs", amount_cents=60000, currency="USD", category="payroll"
        ),
    ]


def movements(m: dict[MetricKey, float], window: str) -> dict[str, float]:
    """cs_mrr_movement of one window as {kind: amount}."""
    kinds = ("new", "reactivation", "expansion", "contraction", "churned")
    return {k: m[key("cs_mrr_movement", currency="USD", kind=k, window=window)] for k in kinds}


def test_revenue_state() -> None:
    m = compute(revenue_events(), T)
    # Paying now: x 50, y 200, w 80.
    assert m[key("cs_mrr", currency="USD")] == 330.0
    assert m[key("cs_paying_accounts")] == 3
    assert m[key("cs_arpa", currency="USD")] == pytest.approx(110.0)
    assert key("cs_clv", currency="USD") not in m  # churn 30d absent (see below)


def test_revenue_movements_and_churn() -> None:
    m = compute(revenue_events(), T)
    short = {"new": 100, "reactivation": 50, "expansion": 50, "contraction": 30, "churned": 120}
    assert movements(m, "1h") == short
    assert movements(m, "1d") == short
    # 7d adds w new 80 and z churned 300.
    assert movements(m, "7d") == {**short, "new": 180, "churned": 420}
    # 30d adds y new 200 and z new 300.
    assert movements(m, "30d") == {**short, "new": 680, "churned": 420}
    assert per_window(m, "cs_churned_accounts") == {"1h": 1, "1d": 1, "7d": 2, "30d": 2}
    # S = paying now - (new + reactivated - churned):
    # 1h/1d: 3 - (2 - 1) = 2 -> churn 1/2, retention (3 - 2)/2.
    # 7d: 3 - (3 - 2) = 2 -> churn 2/2, retention (3 - 3)/2.
    # 30d: 3 - (5 - 2) = 0 -> both absent.
    assert per_window(m, "cs_churn_ratio") == {"1h": 0.5, "1d": 0.5, "7d": 1.0}
    assert per_window(m, "cs_retention_ratio") == {"1h": 0.5, "1d": 0.5, "7d": 0.0}


def test_revenue_retention() -> None:
    m = compute(revenue_events(), T)
    # MRR now 330. 1h/1d movements: +100 +50 +50 -30 -120 = +50 -> start 280
    # (y 200 + w 80 an hour ago). Lost 150, expansion 50, gained 200.
    # 7d: +180 +50 +50 -30 -420 = -170 -> start 500 (y 200 + z 300 a week ago).
    # 30d: +680 +50 +50 -30 -420 = +330 -> start 0: every ratio on it is absent.
    assert per_window(m, "cs_mrr_start", currency="USD") == {
        "1h": 280.0,
        "1d": 280.0,
        "7d": 500.0,
        "30d": 0.0,
    }
    assert per_window(m, "cs_revenue_churn_ratio") == {"1h": 150 / 280, "1d": 150 / 280, "7d": 0.9}
    assert per_window(m, "cs_nrr_ratio") == {"1h": 180 / 280, "1d": 180 / 280, "7d": 0.2}
    assert per_window(m, "cs_grr_ratio") == {"1h": 130 / 280, "1d": 130 / 280, "7d": 0.1}
    assert per_window(m, "cs_quick_ratio") == {
        "1h": 200 / 150,
        "1d": 200 / 150,
        "7d": 280 / 450,
        "30d": 780 / 450,
    }


def test_revenue_event_ratios_and_costs() -> None:
    m = compute(revenue_events(), T)
    # renewed y @-100 / (renewed + z's at-term-end cancel @-2d); x's cancel is not at term end.
    assert per_window(m, "cs_renewal_ratio") == {"1h": 1.0, "1d": 1.0, "7d": 0.5, "30d": 0.5}
    # w converted @-2d, v expired @-1d (bucket just outside 1d).
    assert per_window(m, "cs_trial_conversion_ratio") == {"7d": 0.5, "30d": 0.5}
    assert per_window(m, "cs_payment_failures") == {"1h": 1, "1d": 1, "7d": 1, "30d": 1}
    # 600.00 of cost @-10d over 3 paying accounts.
    assert per_window(m, "cs_retention_cost", currency="USD") == {
        "1h": 0.0,
        "1d": 0.0,
        "7d": 0.0,
        "30d": 200.0,
    }


def test_movements_follow_time_order_across_subscriptions() -> None:
    # Arrival: s1 start, s2 start, s1 cancel. Time order: s1 @-300, cancel @-200, s2 @-100:
    # new 100, churned 100, reactivation 50 (not an expansion then a contraction).
    events = [
        sub("subscription.started", -300, "a", "s1", mrr_cents=10000),
        sub("subscription.started", -100, "a", "s2", mrr_cents=5000),
        sub("subscription.canceled", -200, "a", "s1"),
    ]
    m = compute(events, T)
    assert movements(m, "1h") == {
        "new": 100,
        "reactivation": 50,
        "expansion": 0,
        "contraction": 0,
        "churned": 100,
    }
    assert m[key("cs_churned_accounts", window="1h")] == 1
    # S = 1 - (2 - 1) = 0: churn and retention absent.
    assert key("cs_churn_ratio", window="1h") not in m
    assert m[key("cs_mrr", currency="USD")] == 50.0


def test_stale_billing_events_do_not_change_state() -> None:
    start = sub("subscription.started", -1000, "a", "s", mrr_cents=10000)
    renew = sub("subscription.renewed", -900, "a", "s")
    down = sub("subscription.changed", -800, "a", "s", mrr_cents=5000)
    cancel = sub("subscription.canceled", -700, "a", "s", at_term_end=True)
    up = sub("subscription.changed", -500, "a", "s", mrr_cents=20000)
    # Arrival start, up, then down/cancel/renew dated before up: all three stale.
    m = compute([start, up, down, cancel, renew], T)
    assert m[key("cs_mrr", currency="USD")] == 200.0
    assert movements(m, "1h") == {
        "new": 100,
        "reactivation": 0,
        "expansion": 100,
        "contraction": 0,
        "churned": 0,
    }
    # Stale events still count as events: renewed 1 / (1 + 1 at-term-end cancel).
    assert m[key("cs_renewal_ratio", window="1h")] == 0.5
    # The same events in time order all apply: new 100, contraction 50,
    # churned 50, reactivation 200; same final MRR.
    m = compute([start, renew, down, cancel, up], T)
    assert m[key("cs_mrr", currency="USD")] == 200.0
    assert movements(m, "1h") == {
        "new": 100,
        "reactivation": 200,
        "expansion": 0,
        "contraction": 50,
        "churned": 50,
    }


def test_equal_time_is_not_stale() -> None:
    events = [
        sub("subscription.started", -600, "a", "s", mrr_cents=10000),
        sub("subscription.changed", -500, "a", "s", mrr_cents=20000),
        sub("subscription.changed", -500, "a", "s", mrr_cents=30000),
    ]
    assert compute(events, T)[key("cs_mrr", currency="USD")] == 300.0


def test_plan_change_during_trial_stays_trial() -> None:
    # A trial's plan change keeps it a trial (0 MRR); only conversion makes it pay.
    events = [
        sub("subscription.started", -900, "a", "s", mrr_cents=5000, trial=True),
        sub("subscription.changed", -800, "a", "s", mrr_cents=7000),
    ]
    assert compute(events, T)[key("cs_mrr", currency="USD")] == 0.0
    events.append(sub("trial.converted", -700, "a", "s", mrr_cents=8000))
    m = compute(events, T)
    assert m[key("cs_mrr", currency="USD")] == 80.0
    assert movements(m, "1h")["new"] == 80.0


def test_clv_and_configured_currency() -> None:
    # a and b paying since just before the 30d window (retained bucket, no movement);
    # b churns @-5d. 30d: S = 1 - (0 - 1) = 2, churn 1/2, retention (1 - 0)/2.
    # ARPA 100; CLV = 100 x 0.8 / 0.5 = 160.
    events = [
        sub("subscription.started", -2592000 + 10, "a", "a1", mrr_cents=10000),
        sub("subscription.started", -2592000 + 10, "b", "b1", mrr_cents=10000),
        sub("subscription.canceled", -5 * DAY, "b", "b1"),
    ]
    m = compute(events, T, RefConfig(gross_margin=0.8, currency="EUR"))
    assert per_window(m, "cs_churn_ratio") == {"1h": 0.0, "1d": 0.0, "7d": 0.5, "30d": 0.5}
    assert per_window(m, "cs_retention_ratio") == {"1h": 1.0, "1d": 1.0, "7d": 0.5, "30d": 0.5}
    assert m[key("cs_arpa", currency="EUR")] == 100.0
    assert m[key("cs_clv", currency="EUR")] == pytest.approx(160.0)
    assert movements_eur_churned_30d(m) == 100.0


def movements_eur_churned_30d(m: dict[MetricKey, float]) -> float:
    """The currency label follows the configuration."""
    return m[key("cs_mrr_movement", currency="EUR", kind="churned", window="30d")]


# --------------------------------------------------------------------------- order


def test_arrival_order_does_not_matter_outside_billing_staleness() -> None:
    events = fcr_events() + usage_events() + survey_events() + revenue_events()
    expected = compute(sorted(events, key=lambda e: parse_time(e["time"])), T)
    # Reversed non-billing events; billing grouped by subscription (each still in
    # time order, so nothing is stale) but interleaved out of time order overall.
    billing = [e for e in events if "subscription_id" in e["data"]]
    others = [e for e in events if "subscription_id" not in e["data"]]
    billing.sort(key=lambda e: e["data"]["subscription_id"])
    assert compute(others[::-1] + billing, T) == expected


def test_custom_windows() -> None:
    config = RefConfig(windows={"2h": 7200}, granularity={"2h": 600})
    events = [
        ev("ticket.opened", -7200, ticket_id="kept"),  # bucket T/600 - 12: retained, no window
        ev("ticket.opened", -7201, ticket_id="late"),  # bucket T/600 - 13: too late, yet open
        ev("ticket.opened", -6600, ticket_id="in"),  # bucket T/600 - 11: in 2h
    ]
    m = compute(events, T, config)
    assert m[key("cs_tickets_opened", window="2h")] == 1
    assert m[key("cs_tickets_open")] == 3
    assert key("cs_stickiness_ratio") not in m
