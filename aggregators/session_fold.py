"""The logins fold, a session at a time: the fast path for 9 events in 10.

Why: a product's login stream is mostly heartbeats, and the per-event path
(a counter call, an entity call, a full re-diff of every touched session)
cost more than all the other families together. Here the batch loop only
checks duplicates and lateness and groups events by session; each session's
events are then folded at once, and a session whose new times all come at or
after its last stored time (the usual case) contributes only its new gaps,
instead of retracting and re-adding its whole history.

Every amount is the same as the per-event path's
(:func:`aggregators.batch.fold_each`); ``tests/unit/test_session_fold.py``
checks that on random batches.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from aggregators.config import MetricConfig
from aggregators.effects import Tally
from aggregators.families.sessions import (
    ACCOUNTS,
    DAY,
    SESSIONS,
    TIME_IN_APP,
    USERS,
    SessionState,
)
from schemas import Event
from schemas.models import SessionEnded, SessionStarted

HEARTBEAT = "session.heartbeat"
"""The one event type that neither starts nor ends a session."""

Member = tuple[str, str, str]
"""(distinct-count name, plan segment, member)."""


def note_latest(latest: dict[Member, float], key: Member, ts: float) -> None:
    """Keep the latest time a distinct member was seen at."""
    if ts > latest.get(key, -math.inf):
        latest[key] = ts


def count_session(
    events: list[Event], times: list[float], marked: bool, account: str, segment: str, tally: Tally
) -> None:
    """A session's batch of events in the counters: distinct users and account, and (when
    ``marked``: some event is not a heartbeat) the sessions started."""
    newest = max(times)
    latest = tally.latest
    note_latest(latest, (ACCOUNTS, segment, account), newest)
    users: set[str] = {event.data.user_id for event in events}  # type: ignore[union-attr,misc]
    if len(users) == 1:
        note_latest(latest, (USERS, segment, users.pop()), newest)
    else:
        for event in events:
            data: Any = event.data
            note_latest(latest, (USERS, segment, data.user_id), event.time)
    if marked:
        for event in events:
            if type(event.data) is SessionStarted:
                tally.add(SESSIONS, segment, event.time, 1)


def arrives_late(state: SessionState, times: list[float]) -> bool:
    """Whether a new time comes before the session's last stored one (a full diff then)."""
    stored = state.times
    return bool(stored) and min(times) < stored[-1]


def merge_times(state: SessionState, events: list[Event], times: list[float], marked: bool) -> int:
    """Add a batch's event times to the session, kept sorted; the index of the first new
    time (meaningful when none :func:`arrives_late`)."""
    stored = state.times
    start = len(stored)
    stored.extend(sorted(times))
    if start and stored[start] < stored[start - 1]:
        stored.sort()
    if marked and any(type(event.data) is SessionEnded for event in events):
        state.ended = True
    return start


def add_new_gaps(
    state: SessionState, start: int, since: float, config: MetricConfig, tally: Tally
) -> None:
    """Time in app of the gaps that end at a new time (from ``start`` on) and at or after
    ``since``: what an append-only batch changes, as the old gaps all end earlier."""
    times, idle, segment, floor = state.times, config.idle_timeout, state.segment, math.floor
    amounts, finest, rolls_up = tally.amounts, tally.finest, tally.rolls_up
    earlier = times[max(start, 1) - 1]
    for later in itertools.islice(times, max(start, 1), None):
        gap = later - earlier
        if 0 < gap <= idle and later >= since:
            amounts[(TIME_IN_APP, segment, floor(later / finest) if rolls_up else later)] += gap
        earlier = later


def facts_sample(events: list[Event], times: list[float]) -> list[Event]:
    """The events the usage facts need: its latest and one per UTC day (facts keep active
    days and the latest time), so facts cost per session, not per event."""
    if min(times) // DAY == max(times) // DAY:  # the days are counted as ``time // DAY``
        return [events[times.index(max(times))]]
    return events


def live_time(state: SessionState) -> float | None:
    """The session's latest time while it is live; None once it ended."""
    return None if state.ended or not state.times else state.times[-1]


def copy_state(state: SessionState) -> SessionState:
    """The state before a batch that merges out of order (its full diff needs it)."""
    return SessionState(state.segment, list(state.times), state.ended)
