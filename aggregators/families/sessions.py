"""Product usage: sessions, active users and accounts, time in app, live sessions.

A session's state is the sorted list of its event times, so a late event
lands between its neighbours: the gap it splits is retracted from the bucket
of its later event and the two new gaps are added where they belong.
"""

from __future__ import annotations

import bisect
import itertools

from aggregators.config import BatchClock, MetricConfig
from aggregators.effects import Contribution, Effects, Gauges
from aggregators.families.base import State
from aggregators.plans import with_plan
from schemas import Event

SESSIONS = "sessions"
TIME_IN_APP = "time_in_app"
USERS = "u"
ACCOUNTS = "a"
"""Distinct-count names: users and accounts, each kept with its latest event time."""


class SessionFamily:
    """Entity: one session (account + session id)."""

    def entity_key(self, event: Event) -> str | None:
        return f"s:{event.account_id}:{event.data.session_id}"  # type: ignore[union-attr]

    def new_state(self, event: Event) -> State:
        return {"t": [], "e": False, "p": None}

    def update(self, state: State, event: Event, offset: int, effects: Effects) -> None:
        bisect.insort(state["t"], event.time)
        if event.type == "session.ended":
            state["e"] = True

    def count(self, event: Event, effects: Effects, config: MetricConfig) -> None:
        grans = config.granularities
        if event.type == "session.started":
            effects.count(SESSIONS, event.time, 1, grans, event.account_id)
        user_id: str = event.data.user_id  # type: ignore[union-attr,assignment]
        effects.distinct(USERS, user_id, event.time, event.account_id)
        effects.distinct(ACCOUNTS, event.account_id, event.time, event.account_id)

    def contribute(self, state: State, config: MetricConfig) -> tuple[Contribution, Gauges]:
        contribution: Contribution = {}
        times = state["t"]
        for earlier, later in itertools.pairwise(times):
            gap = later - earlier
            if 0 < gap <= config.idle_timeout:
                contribution[(TIME_IN_APP, later)] = contribution.get((TIME_IN_APP, later), 0) + gap
        return with_plan(contribution, state.get("p")), {}

    def note(self, facts: State, event: Event, config: MetricConfig) -> None:
        """Active days (day index, UTC) of the account; the 31 most recent are kept."""
        days = set(facts.get("days", []))
        days.add(int(event.time // 86400))
        facts["days"] = sorted(days)[-31:]

    def finish(
        self, key: str, state: State, effects: Effects, config: MetricConfig, clock: BatchClock
    ) -> State | None:
        member = key[2:]
        effects.live[member] = None if state["e"] else state["t"][-1]
        return state
