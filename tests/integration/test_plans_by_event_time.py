"""Per-plan numbers of a history already in Kafka, through the real broker and Redis.

Ten days of the simulated world (sign-ups, plan changes, churn) are published
before any worker starts, so each worker reads the topics in whatever order
the broker serves them; one worker, then two. Each plan's series must equal
the independent reference (tests/reference.py) run on the events that plan
gets by the contract's rule (metrics.md, Segments): the plan of the account's
latest plan-naming billing event at or before the event's time; a ticket at
its opening, a session at its start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import pytest

from tests import reference
from tests.compare import mismatches
from tests.harness import Stack, WorkerProcess, last_offsets, publish, scrape, wait_applied
from tests.integration.conftest import fresh_names
from tests.scenarios import Scenario, event, generated_bulk

pytestmark = pytest.mark.slow

DAY = 86_400.0
Body = dict[str, Any]

BY_TICKET = ("cs_tickets_", "cs_fcr_ratio", "cs_first_response_", "cs_resolution_")
BY_OWN_TIME = (
    "cs_survey_responses",
    "cs_nps",
    "cs_csat_ratio",
    "cs_ces_avg",
    "cs_feedback_comments",
    "cs_active_users",
    "cs_active_accounts",
    "cs_stickiness_ratio",
    "cs_payment_failures",
    "cs_renewal_ratio",
    "cs_trial_conversion_ratio",
)
BY_SESSION = ("cs_sessions", "cs_time_in_app_seconds")
EXACT = {"cs_sessions", "cs_time_in_app_seconds"}
"""Names matched whole (``cs_sessions_active`` is not attributed to a plan)."""


def _named(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p if p in EXACT else name.startswith(p) for p in prefixes)


def plan_rule(events: list[Body]) -> Callable[[str, Fraction], str]:
    named = sorted(
        (reference.parse_time(e["time"]), i, e["data"]["account_id"], e["data"]["plan"])
        for i, e in enumerate(events)
        if e["type"] in ("subscription.started", "subscription.changed", "trial.converted")
    )

    def at(account: str, t: Fraction) -> str:
        found = "none"
        for ts, _i, who, plan in named:
            if who == account and ts <= t:
                found = plan
        return found

    return at


def split_by_plan(events: list[Body]) -> dict[tuple[str, str], list[Body]]:
    """(way, plan) -> the events that count there; way: ticket, own time, session."""
    at = plan_rule(events)
    opened: dict[tuple[str, str], Fraction] = {}
    started: dict[tuple[str, str], Fraction] = {}
    for e in events:
        data, ts = e["data"], reference.parse_time(e["time"])
        if e["type"] == "ticket.opened":
            opened.setdefault((data["account_id"], data["ticket_id"]), ts)
        if e["type"] == "session.started":
            started.setdefault((data["account_id"], data["session_id"]), ts)
    out: dict[tuple[str, str], list[Body]] = {}
    for e in events:
        data, ts = e["data"], reference.parse_time(e["time"])
        account = data["account_id"]
        if e["type"].startswith("ticket."):
            plan = at(account, opened.get((account, data["ticket_id"]), ts))
            out.setdefault(("ticket", plan), []).append(e)
        elif e["type"].startswith("session."):
            plan = at(account, started.get((account, data["session_id"]), ts))
            out.setdefault(("session", plan), []).append(e)
            out.setdefault(("own", at(account, ts)), []).append(e)
        else:
            out.setdefault(("own", at(account, ts)), []).append(e)
    return out


WAYS = {"ticket": BY_TICKET, "own": BY_OWN_TIME, "session": BY_SESSION}


def expected_per_plan(events: list[Body], t: float) -> dict[str, dict[Any, float]]:
    ways = WAYS
    out: dict[str, dict[Any, float]] = {}
    for (way, plan), chosen in split_by_plan(events).items():
        computed = reference.compute(chosen, t)
        kept = {k: v for k, v in computed.items() if _named(k[0], ways[way])}
        out.setdefault(plan, {}).update(kept)
    return out


def attributed(scraped: dict[Any, float]) -> dict[Any, float]:
    every = (*BY_TICKET, *BY_OWN_TIME, *BY_SESSION)
    return {k: v for k, v in scraped.items() if _named(k[0], every)}


@pytest.fixture(scope="module")
def history() -> Scenario:
    now = time.time()
    scenario = Scenario()
    for body in generated_bulk(now - 10 * DAY, now - 600, accounts=30, seed=5):
        scenario.add(body)
    # an account that never names a plan: whether the generated accounts without one
    # answer anything inside the windows depends on the hour the test runs at
    scenario.add(event("survey.answered", now - 900, "walk-in", kind="nps", score=7))
    return scenario


def run_workers(stack: Stack, scenario: Scenario, count: int) -> WorkerProcess:
    prefix, group = fresh_names(stack)
    published = publish(stack.bootstrap, [(prefix + t, k, v) for t, k, v in scenario.messages])
    workers = [stack.new_worker(prefix, group).start() for _ in range(count)]
    wait_applied(stack.redis(), last_offsets(published), timeout=240)
    return workers[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_every_plan_equals_the_reference_for_a_history_already_in_kafka(
    stack: Stack, history: Scenario, workers: int
) -> None:
    worker = run_workers(stack, history, workers)
    scraped = scrape(worker.port)
    t = max(float(reference.parse_time(e["time"])) for e in history.valid)
    want = expected_per_plan(history.valid, t)
    assert len(want) >= 3 and "none" in want, "the history covers several plans and none"
    ways = split_by_plan(history.valid)
    problems = []
    for plan, expected in want.items():
        got = attributed(scraped)
        for way, names in WAYS.items():  # a plan with no event of a kind: zero counts
            if (way, plan) not in ways:
                got = {k: v for k, v in got.items() if v != 0 or not _named(k[0], names)}
        problems += [f"plan={plan}: {p}" for p in mismatches(got, expected, plan)]
    assert not problems, "\n".join(problems[:40])
