"""Support metrics: tickets opened and resolved, FCR, response and resolution times, backlog.

A ticket's state keeps only what its definitions need: earliest and latest
opening, earliest and latest resolution, latest reopen, and the agent reply
times. Everything else is derived, so events may arrive in any order.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence

import msgspec

from aggregators.config import MetricConfig
from aggregators.effects import Contribution
from aggregators.entity_keys import TICKET, EntityKey
from aggregators.facts import TICKETS, TicketFacts
from aggregators.families.base import Change, Family, Kept
from aggregators.histograms import FIRST_RESPONSE, RESOLUTION, histogram_field, histogram_fields
from schemas import Event
from schemas.models import TicketOpened, TicketReopened, TicketReplied, TicketResolved

OPENED = "tickets_opened"
RESOLVED = "tickets_resolved"
FCR = "fcr_resolved"
FIRST_RESPONSE_SUM = "first_response_sum"
FIRST_RESPONSE_N = "first_response_n"
RESOLUTION_SUM = "resolution_sum"
RESOLUTION_N = "resolution_n"
BACKLOG = "tickets_open"


class TicketState(msgspec.Struct, array_like=True):
    """One ticket, in any arrival order."""

    segment: str
    """Plan label of the account at the ticket's opening (at its first event read until
    the opening arrives)."""
    opened_first: float | None = None
    opened_last: float | None = None
    resolved_first: float | None = None
    resolved_last: float | None = None
    reopened_last: float | None = None
    agent_replies: list[float] = msgspec.field(default_factory=list)
    """Agent reply times, sorted."""

    def is_open(self) -> bool:
        """Open when the latest of opened/reopened/resolved is not a resolution (ties: resolved)."""
        latest_open = max(
            (ts for ts in (self.opened_last, self.reopened_last) if ts is not None), default=None
        )
        if latest_open is None:
            return False
        return self.resolved_last is None or latest_open > self.resolved_last

    @property
    def first_agent_reply(self) -> float | None:
        return min(self.agent_replies, default=None)

    def first_contact(self) -> bool:
        """Resolved after exactly one agent reply, and never reopened."""
        resolved = self.resolved_first
        if resolved is None or self.reopened_last is not None:
            return False
        return bisect.bisect_left(self.agent_replies, resolved) == 1


def _earliest(current: float | None, ts: float) -> float:
    return ts if current is None or ts < current else current


def _latest(current: float | None, ts: float) -> float:
    return ts if current is None or ts > current else current


class Tickets:
    """Entity: one ticket (account + ticket id). No stateless counters."""

    state_type = TicketState
    applies_late = True
    tracks_live = False
    facts_type = TicketFacts

    def key(self, event: Event) -> EntityKey | None:
        match event.data:
            case (
                TicketOpened(ticket_id=ticket)
                | TicketReplied(ticket_id=ticket)
                | TicketResolved(ticket_id=ticket)
                | TicketReopened(ticket_id=ticket)
            ):
                return EntityKey(TICKET, event.account_id, ticket)
        return None

    def new(self, event: Event, segment: str) -> TicketState:
        return TicketState(segment)

    def fold(
        self, state: TicketState, event: Event, offset: int, labels: Mapping[str, str]
    ) -> bool:
        ts = event.time
        match event.data:
            case TicketOpened():
                state.opened_first = _earliest(state.opened_first, ts)
                state.opened_last = _latest(state.opened_last, ts)
            case TicketResolved():
                state.resolved_first = _earliest(state.resolved_first, ts)
                state.resolved_last = _latest(state.resolved_last, ts)
            case TicketReopened():
                state.reopened_last = _latest(state.reopened_last, ts)
            case TicketReplied(author="agent"):
                bisect.insort(state.agent_replies, ts)
        return True

    def contribute(self, state: TicketState, config: MetricConfig) -> Contribution:
        windowed: dict[tuple[str, str, float], float] = {}
        seg = state.segment
        opened, resolved = state.opened_first, state.resolved_first
        if opened is not None:
            windowed[(OPENED, seg, opened)] = 1.0
        if resolved is not None:
            windowed[(RESOLVED, seg, resolved)] = 1.0
            if state.first_contact():
                windowed[(FCR, seg, resolved)] = 1.0
            if opened is not None:
                windowed[(RESOLUTION_SUM, seg, resolved)] = max(0.0, resolved - opened)
                windowed[(RESOLUTION_N, seg, resolved)] = 1.0
                windowed[(histogram_field(RESOLUTION, resolved - opened), seg, resolved)] = 1.0
        first = state.first_agent_reply
        if first is not None and opened is not None:
            windowed[(FIRST_RESPONSE_SUM, seg, first)] = max(0.0, first - opened)
            windowed[(FIRST_RESPONSE_N, seg, first)] = 1.0
            windowed[(histogram_field(FIRST_RESPONSE, first - opened), seg, first)] = 1.0
        gauges = {(BACKLOG, seg): 1.0} if state.is_open() else {}
        return Contribution(windowed, gauges)

    def place(
        self, state: TicketState, before: TicketState | None, plan_at: Callable[[float], str]
    ) -> None:
        """A ticket counts in its account's plan at its opening (metrics.md, Segments)."""
        opened = state.opened_first
        if opened is not None and (before is None or before.opened_first != opened):
            state.segment = plan_at(opened)

    def finish(self, state: TicketState, cutoff: float) -> Kept[TicketState] | None:
        return Kept(state, persistent=state.is_open())

    def facts(
        self,
        previous: TicketFacts,
        events: Sequence[Event],
        changes: Sequence[Change[TicketState]],
        config: MetricConfig,
    ) -> TicketFacts:
        """Open, resolved and first-contact-resolved tickets of the account: each touched
        ticket's old share is taken out and its new share added."""
        for change in changes:
            for state, sign in ((change.before, -1.0), (change.after, 1.0)):
                if state is not None:
                    previous.open += sign * state.is_open()
                    previous.resolved += sign * (state.resolved_first is not None)
                    previous.fcr += sign * state.first_contact()
        return previous


_TICKETS = Tickets()
FIELDS = frozenset(
    {OPENED, RESOLVED, FCR, FIRST_RESPONSE_SUM, FIRST_RESPONSE_N, RESOLUTION_SUM, RESOLUTION_N}
    | {BACKLOG, *histogram_fields(FIRST_RESPONSE), *histogram_fields(RESOLUTION)}
)
"""The counter and gauge fields tickets write."""
FAMILY: Family[TicketState, TicketFacts] = Family(
    TICKETS,
    None,
    _TICKETS,
    _TICKETS,
    FIELDS,
    window_counts={OPENED: "cs_tickets_opened", RESOLVED: "cs_tickets_resolved"},
)
