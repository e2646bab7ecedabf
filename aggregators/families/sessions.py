"""Product usage: sessions, active users and accounts, time in app, live sessions.

A session's state is the sorted list of its event times, so a late event
lands between its neighbours: the gap it splits is retracted from the bucket
of its later event and the two new gaps are added where they belong. Times
older than the retention fold away (all but the last one before it, which
still bounds the first retained gap), so a session that never ends keeps
at most one retention's worth of times.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from aggregators.config import MetricConfig
from aggregators.effects import Contribution, Tally
from aggregators.entity_keys import SESSION, EntityKey
from aggregators.facts import ACTIVE_DAYS_KEPT, LOGINS, UsageFacts
from aggregators.families.base import Change, Family, Kept
from schemas import Event
from schemas.models import SessionEnded, SessionHeartbeat, SessionStarted

SESSIONS = "sessions"
TIME_IN_APP = "time_in_app"
USERS = "u"
ACCOUNTS = "a"
"""Distinct-count names: users and accounts, each kept with its latest event time."""
PAYING_ACTIVE = "paying_active"
"""Distinct-count name: accounts paying now, by latest session time (the health index)."""
DAY = 86400


_SESSION_EVENTS = frozenset({SessionStarted, SessionHeartbeat, SessionEnded})


class SessionState(msgspec.Struct, array_like=True):
    """One session: its event times, sorted, and whether it ended."""

    segment: str
    times: list[float] = msgspec.field(default_factory=list)
    ended: bool = False


class Sessions:
    """Entity: one session (account + session id); counters: sessions, distinct users."""

    state_type = SessionState
    applies_late = False
    tracks_live = True
    facts_type = UsageFacts

    def count(self, event: Event, segment: str, tally: Tally, config: MetricConfig) -> None:
        data: Any = event.data
        ts = event.time
        kind = type(data)
        if kind is SessionStarted:
            tally.add(SESSIONS, segment, ts, 1)
        elif kind is not SessionHeartbeat and kind is not SessionEnded:
            return
        # Tally.distinct, twice, inlined: this runs for nearly every event of the stream
        latest = tally.latest
        user = (USERS, segment, data.user_id)
        if ts > latest.get(user, -math.inf):
            latest[user] = ts
        account = (ACCOUNTS, segment, event.account_id)
        if ts > latest.get(account, -math.inf):
            latest[account] = ts

    def key(self, event: Event) -> EntityKey | None:
        data: Any = event.data
        if type(data) in _SESSION_EVENTS:
            # tuple.__new__: a NamedTuple's own constructor is a Python function
            return tuple.__new__(EntityKey, (SESSION, event.account_id, data.session_id))
        return None

    def new(self, event: Event, segment: str) -> SessionState:
        return SessionState(segment)

    def fold(
        self, state: SessionState, event: Event, offset: int, labels: Mapping[str, str]
    ) -> bool:
        times = state.times
        if not times or event.time >= times[-1]:
            times.append(event.time)
        else:
            bisect.insort(times, event.time)
        if type(event.data) is SessionEnded:
            state.ended = True
        return True

    def contribute(self, state: SessionState, config: MetricConfig) -> Contribution:
        windowed: dict[tuple[str, str, float], float] = {}
        idle, seg = config.idle_timeout, state.segment
        for earlier, later in itertools.pairwise(state.times):
            gap = later - earlier
            if 0 < gap <= idle:
                key = (TIME_IN_APP, seg, later)
                windowed[key] = windowed.get(key, 0.0) + gap
        live = None if state.ended or not state.times else state.times[-1]
        return Contribution(windowed, {}, live)

    def place(
        self, state: SessionState, before: SessionState | None, plan_at: Callable[[float], str]
    ) -> None:
        """A session counts in its account's plan at its start: its earliest event."""
        times = state.times
        if times and (before is None or not before.times or before.times[0] != times[0]):
            state.segment = plan_at(times[0])

    def finish(self, state: SessionState, cutoff: float) -> Kept[SessionState] | None:
        first_kept = bisect.bisect_left(state.times, cutoff) - 1
        if first_kept > 0:
            del state.times[:first_kept]
        return Kept(state, persistent=False)

    def facts(
        self,
        previous: UsageFacts,
        events: Sequence[Event],
        changes: Sequence[Change[SessionState]],
        config: MetricConfig,
    ) -> UsageFacts:
        """Active days (UTC day index) of the account; the most recent are kept."""
        days = set(previous.days)
        days.update(int(event.time // DAY) for event in events)
        previous.days = sorted(days)[-ACTIVE_DAYS_KEPT:]
        return previous


SESSION_ENTITY = Sessions()
"""The logins entity (:func:`aggregators.batch.fold_batch` folds it a session at a time)."""


def session_keys(events: Sequence[Event]) -> list[EntityKey | None]:
    """Each event's session, in one pass (only session events carry a ``session_id``)."""
    try:
        return [
            tuple.__new__(EntityKey, (SESSION, event.account_id, event.data.session_id))  # type: ignore[union-attr]
            for event in events
        ]
    except AttributeError:  # an event of another family, on a topic named like no family
        return [SESSION_ENTITY.key(event) for event in events]


FIELDS = frozenset({SESSIONS, TIME_IN_APP, USERS, ACCOUNTS, PAYING_ACTIVE})
"""The counter fields and distinct-count names of logins (``paying_active``: the health
index's, read per window like the others)."""
FAMILY: Family[SessionState, UsageFacts] = Family(
    LOGINS,
    SESSION_ENTITY,
    SESSION_ENTITY,
    SESSION_ENTITY,
    FIELDS,
    distinct=(USERS, ACCOUNTS),
    batch_keys=session_keys,
    by_session=True,
)
