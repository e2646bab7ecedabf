"""Backfills, hostile names and repeated ids, through the real broker and Redis.

One worker (``clock=watermark``) reads a history in which the billing topic
is 34 days deep while the logins topic holds only the last hour, plus:
a 60-day-old ticket and a 60-day-old survey answer, a plan named ``all``,
two tickets whose account and ticket ids only differ in where ``:`` falls,
trial accounts that use the product without paying, and one event id sent
again with another time after its first copy was applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pytest

from tests import reference
from tests.compare import mismatches
from tests.harness import (
    MetricKey,
    Published,
    Stack,
    consume_all,
    last_offsets,
    publish,
    scrape,
    wait_applied,
)
from tests.integration.conftest import fresh_names
from tests.scenarios import Scenario, event, topic_of

USD = {"currency": "USD"}
DAY = 86400


def billing_history(scenario: Scenario, now: float) -> None:
    """Three paying accounts over 34 days, one of them contracting yesterday."""
    for n, account in enumerate(("b1", "b2", "b3")):
        sub = {"subscription_id": f"{account}-s", "plan": "team", **USD}
        scenario.add(
            event("subscription.started", now - 34 * DAY + n, account, mrr_cents=9900, **sub)
        )
        scenario.add(
            event(
                "invoice.paid",
                now - 33 * DAY + n,
                account,
                invoice_id=f"{account}-i1",
                amount_cents=9900,
                **USD,
            )
        )
        if account == "b3":
            scenario.add(event("subscription.changed", now - DAY, account, mrr_cents=4900, **sub))
    scenario.add(
        event(
            "subscription.started",
            now - 3600,
            "allco",
            subscription_id="all-s",
            plan="all",
            mrr_cents=1_000_000,
            **USD,
        )
    )
    for account in ("t1", "t2"):
        scenario.add(
            event(
                "subscription.started",
                now - 7200,
                account,
                subscription_id=f"{account}-s",
                plan="team",
                mrr_cents=0,
                trial=True,
                **USD,
            )
        )


def recent_usage(scenario: Scenario, now: float) -> None:
    """Sessions in the last hour: two paying accounts and two trials."""
    for n, account in enumerate(("b1", "b2", "t1", "t2")):
        session = {"session_id": f"{account}-x", "user_id": f"{account}-u"}
        scenario.add(event("session.started", now - 1800 + n, account, **session))
        scenario.add(event("session.heartbeat", now - 600 + n, account, **session))


def colliding_tickets(scenario: Scenario, now: float) -> None:
    """Account ``org:7`` ticket ``42`` and account ``org`` ticket ``7:42``, one partition."""
    for account, ticket in (("org:7", "42"), ("org", "7:42")):
        ev = event("ticket.opened", now - 900, account, ticket_id=ticket)
        scenario.messages.append(("tickets", b"org", orjson.dumps(ev)))
        scenario.valid.append(ev)


def send(
    stack: Stack, prefix: str, messages: list[tuple[str, bytes | None, bytes]]
) -> list[Published]:
    published = publish(stack.bootstrap, [(prefix + t, k, v) for t, k, v in messages])
    wait_applied(stack.redis(), last_offsets(published))
    return published


@pytest.fixture(scope="module")
def backfill(stack: Stack):  # type: ignore[no-untyped-def]
    prefix, group = fresh_names(stack)
    now = time.time()
    scenario = Scenario()
    recent_usage(scenario, now)  # the fast topic goes first
    billing_history(scenario, now)
    colliding_tickets(scenario, now)
    # acme's partitions first see recent events, then 60-day-old ones: too late there
    scenario.add(event("ticket.opened", now - 600, "acme", ticket_id="NEW"))
    repeated = event("survey.answered", now - 300, "acme", kind="nps", score=10)
    scenario.add(repeated)
    scenario.add_late(event("ticket.opened", now - 60 * DAY, "acme", ticket_id="OLD"))
    scenario.add_late(event("survey.answered", now - 60 * DAY, "acme", kind="csat", score=1))
    worker = stack.new_worker(prefix, group).start()
    published = send(stack, prefix, scenario.messages)
    # the same id again, once as it was and once dated two days earlier
    again = [repeated, {**repeated, "time": reference_iso(now - 2 * DAY - 300)}]
    published += send(
        stack, prefix, [(topic_of(e["type"]), b"acme", orjson.dumps(e)) for e in again]
    )
    scenario.duplicates += 2
    yield stack, prefix, worker, scenario, published
    worker.stop()


def reference_iso(ts: float) -> str:
    from tests.scenarios import iso

    return iso(ts)


def settled(port: int, check: Callable[[dict[MetricKey, float]], list[str]]) -> list[str]:
    """Scrape until ``check`` finds no problem (the health index trails the apply by a moment)."""
    deadline = time.monotonic() + 15
    while True:
        problems = check(scrape(port))
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.3)


def whole(name: str, **labels: str) -> MetricKey:
    return name, tuple(sorted({"plan": "all", **labels}.items()))


def test_every_metric_matches_the_reference_after_a_backfill(backfill) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, scenario, _published = backfill
    t = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
    expected = reference.compute(scenario.valid, t)
    problems = settled(worker.port, lambda m: mismatches(m, expected))
    assert not problems, "\n".join(problems[:40])


def test_a_slow_topic_is_never_late_because_a_fast_one_ran_ahead(backfill) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, _scenario, _published = backfill
    metrics = scrape(worker.port)
    # 99 + 99 + 49 (b3 contracted yesterday) + 10,000 (the plan named "all")
    assert metrics[whole("cs_mrr", currency="USD")] == 10_247.0
    assert metrics[whole("cs_paying_accounts")] == 4
    assert (
        metrics[whole("cs_mrr_movement", currency="USD", kind="contraction", window="1d")] == 50.0
    )


def test_a_60_day_old_ticket_is_open_and_a_60_day_old_answer_is_dead_lettered(backfill) -> None:  # type: ignore[no-untyped-def]
    stack, prefix, worker, _scenario, _published = backfill
    metrics = scrape(worker.port)
    # four open tickets: the old one, acme's new one and the two colliding ones
    assert metrics[whole("cs_tickets_open")] == 4
    assert metrics[whole("cs_tickets_opened", window="30d")] == 3
    late = sum(v for (n, _), v in metrics.items() if n == "cs_events_late_total")
    assert late == 2
    letters = consume_all(stack.bootstrap, prefix + "deadletter", 1)
    reasons = [dict((k, v.decode()) for k, v in r.headers)["cs-reason"] for r in letters]
    assert reasons == ["too_late"]


def test_usage_ratio_counts_paying_accounts_only(backfill) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, _scenario, _published = backfill

    def check(metrics: dict[MetricKey, float]) -> list[str]:
        # active: b1, b2 (paying) and t1, t2 (trials); paying: b1, b2, b3, allco -> 2 / 4
        got = metrics.get(whole("cs_product_usage_ratio", window="1h"))
        return [] if got == 0.5 else [f"usage ratio {got}"]

    assert not settled(worker.port, check)
    metrics = scrape(worker.port)
    assert metrics[whole("cs_active_accounts", window="1h")] == 4
    team = ("cs_product_usage_ratio", (("plan", "team"), ("window", "1h")))
    assert metrics[team] == 2 / 3  # b1, b2 active of b1, b2, b3 on team


def test_a_plan_named_all_does_not_replace_the_whole_base(backfill) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, _scenario, _published = backfill
    metrics = scrape(worker.port)
    assert metrics[whole("cs_mrr", currency="USD")] == 10_247.0
    escaped = ("cs_mrr", (("currency", "USD"), ("plan", "~all")))
    assert metrics[escaped] == 10_000.0
    assert metrics[("cs_mrr", (("currency", "USD"),))] == 10_247.0  # the unlabelled series


def test_the_same_id_with_another_time_counts_once(backfill) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, _scenario, _published = backfill
    metrics = scrape(worker.port)
    assert metrics[whole("cs_survey_responses", kind="nps", window="7d")] == 1
    dups = sum(v for (n, _), v in metrics.items() if n == "cs_events_duplicate_total")
    assert dups == 2


def test_ids_with_a_colon_keep_their_own_tickets(backfill) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, _scenario, _published = backfill
    metrics = scrape(worker.port)
    assert metrics[whole("cs_tickets_opened", window="1h")] == 3  # both, and acme's NEW
