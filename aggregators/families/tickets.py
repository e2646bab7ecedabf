"""Support metrics: tickets opened and resolved, FCR, response and resolution times, backlog.

A ticket's state keeps only what its definitions need: earliest and latest
opening, earliest and latest resolution, latest reopen, and the agent reply
times. Everything else is derived, so events may arrive in any order.
"""

from __future__ import annotations

import bisect

from aggregators.config import BatchClock, MetricConfig
from aggregators.effects import Contribution, Effects, Gauges
from aggregators.families.base import State
from aggregators.histograms import FIRST_RESPONSE, RESOLUTION, histogram_field
from aggregators.plans import gauges_with_plan, with_plan
from schemas import Event

OPENED = "tickets_opened"
RESOLVED = "tickets_resolved"
FCR = "fcr_resolved"
FIRST_RESPONSE_SUM = "first_response_sum"
FIRST_RESPONSE_N = "first_response_n"
RESOLUTION_SUM = "resolution_sum"
RESOLUTION_N = "resolution_n"
BACKLOG = "tickets_open"
ACCOUNT_FACT = "~"
"""Gauge names starting with this are the account's health facts, not partition gauges."""


def _earliest(current: float | None, ts: float) -> float:
    return ts if current is None or ts < current else current


def _latest(current: float | None, ts: float) -> float:
    return ts if current is None or ts > current else current


class TicketFamily:
    """Entity: one ticket (account + ticket id)."""

    def entity_key(self, event: Event) -> str | None:
        return f"t:{event.account_id}:{event.data.ticket_id}"  # type: ignore[union-attr]

    def new_state(self, event: Event) -> State:
        return {
            "a": event.account_id,
            "o": None,
            "om": None,
            "r": None,
            "rm": None,
            "ro": None,
            "ar": [],
            "p": None,
        }

    def update(self, state: State, event: Event, offset: int, effects: Effects) -> None:
        ts = event.time
        kind = event.type
        if kind == "ticket.opened":
            state["o"] = _earliest(state["o"], ts)
            state["om"] = _latest(state["om"], ts)
        elif kind == "ticket.resolved":
            state["r"] = _earliest(state["r"], ts)
            state["rm"] = _latest(state["rm"], ts)
        elif kind == "ticket.reopened":
            state["ro"] = _latest(state["ro"], ts)
        elif kind == "ticket.replied" and event.data.author == "agent":  # type: ignore[union-attr]
            bisect.insort(state["ar"], ts)

    def count(self, event: Event, effects: Effects, config: MetricConfig) -> None:
        """Tickets have no stateless counters: everything hangs off the ticket."""

    def contribute(self, state: State, config: MetricConfig) -> tuple[Contribution, Gauges]:
        contribution: Contribution = {}
        opened, resolved, replies = state["o"], state["r"], state["ar"]
        if opened is not None:
            contribution[(OPENED, opened)] = 1.0
        first_contact = False
        if resolved is not None:
            contribution[(RESOLVED, resolved)] = 1.0
            first_contact = state["ro"] is None and bisect.bisect_left(replies, resolved) == 1
            if first_contact:
                contribution[(FCR, resolved)] = 1.0
            if opened is not None:
                contribution[(RESOLUTION_SUM, resolved)] = max(0.0, resolved - opened)
                contribution[(RESOLUTION_N, resolved)] = 1.0
                contribution[(histogram_field(RESOLUTION, resolved - opened), resolved)] = 1.0
        if replies and opened is not None:
            first = replies[0]
            contribution[(FIRST_RESPONSE_SUM, first)] = max(0.0, first - opened)
            contribution[(FIRST_RESPONSE_N, first)] = 1.0
            contribution[(histogram_field(FIRST_RESPONSE, first - opened), first)] = 1.0
        gauges = {BACKLOG: 1.0 if is_open(state) else 0.0}
        account_facts = {
            "open": gauges[BACKLOG],
            "resolved": 1.0 if resolved is not None else 0.0,
            "fcr": 1.0 if first_contact else 0.0,
        }
        plan = state.get("p")
        gauges = gauges_with_plan(gauges, plan)
        gauges.update({f"{ACCOUNT_FACT}{k}": v for k, v in account_facts.items()})
        return with_plan(contribution, plan), gauges

    def note(self, facts: State, event: Event, config: MetricConfig) -> None:
        """Ticket facts move with the ticket's contribution (see ACCOUNT_FACT)."""

    def finish(
        self, key: str, state: State, effects: Effects, config: MetricConfig, clock: BatchClock
    ) -> State | None:
        if is_open(state):
            effects.persistent.add(key)
        return state


def is_open(state: State) -> bool:
    """Open when the latest of opened/reopened/resolved is not a resolution (ties: resolved)."""
    latest_open = max((ts for ts in (state["om"], state["ro"]) if ts is not None), default=None)
    if latest_open is None:
        return False
    return state["rm"] is None or latest_open > state["rm"]
