"""Plan segments: every business counter is also kept per subscription plan.

A field ``tickets_opened`` counts everything; ``tickets_opened@team`` counts
the events of accounts on plan ``team`` at the event's own time
(:class:`PlanHistory`). Plan labels are bounded (:mod:`aggregators.plan_directory`):
past the configured number of plans, new ones are reported as ``other``;
accounts with no known plan as ``none``. A plan whose name would read as one of these
reserved labels, or contains the separator, is reported under an escaped
label (:func:`label_of`), so no plan can replace the whole-base series.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from aggregators import keys
from schemas import Event
from schemas.models import SubscriptionChanged, SubscriptionStarted, TrialConverted

if TYPE_CHECKING:
    from aggregators.batch import Offered

SEP = "@"
ALL = "all"
OTHER = keys.OTHER_PLAN
NONE = "none"
RESERVED = frozenset({ALL, OTHER, NONE})
ESCAPE = "~"


def segmented(name: str, plan: str) -> str:
    return f"{name}{SEP}{plan}"


def label_of(plan: str) -> str:
    """The label a raw plan name is reported under: itself, unless it is reserved.

    ``all``, ``other``, ``none``, and any name containing the separator or
    starting with the escape character become ``~`` + the name with ``~``
    doubled and ``@`` written ``~a``: one-to-one, never reserved, no separator.
    """
    if plan not in RESERVED and SEP not in plan and not plan.startswith(ESCAPE):
        return plan
    return ESCAPE + plan.replace(ESCAPE, ESCAPE * 2).replace(SEP, ESCAPE + "a")


def split(field: str) -> tuple[str, str]:
    """(base name, plan label) of a stored field; plain fields belong to ``all``."""
    name, sep, plan = field.partition(SEP)
    return (name, plan) if sep else (name, ALL)


PlanEntry = tuple[float, int, str]
"""(event time, offset, bounded plan label) of one plan-naming billing event."""

_LAST: Final = math.inf
"""An offset past every real one: ``(t, _LAST, "")`` sorts after every entry at ``t``."""


class PlanHistory:
    """Each account's plan over event time: the segment an event counts in (metrics.md).

    An account's plan at time T is the label of its latest plan-naming event
    (``subscription.started``, ``subscription.changed``, ``trial.converted``) whose
    own time is at or before T, ties broken by offset; ``none`` before its first.
    Pure: the store loads the entries, the fold asks :meth:`at`, a binary search, as
    a history can hold every plan change of the retention.
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: dict[str, list[PlanEntry]] | None = None) -> None:
        self._entries: dict[str, list[PlanEntry]] = {}
        for account, found in (entries or {}).items():
            self.extend(account, found)

    def extend(self, account: str, entries: list[PlanEntry]) -> None:
        """Add entries (in any order) to an account's history."""
        if entries:
            known = self._entries.get(account, [])
            self._entries[account] = sorted({*known, *entries})

    def at(self, account: str, t: float) -> str:
        """The account's plan label at event time ``t``."""
        entries = self._entries.get(account)
        if not entries:
            return NONE
        found = bisect_right(entries, (t, _LAST, ""))
        return entries[found - 1][2] if found else NONE

    def constant(self, account: str, lo: float, hi: float) -> str | None:
        """The plan label throughout ``[lo, hi]``, or None when it changes in between."""
        entries = self._entries.get(account)
        if entries:
            after = bisect_right(entries, (lo, _LAST, ""))
            if after < len(entries) and entries[after][0] <= hi:
                return None
        return self.at(account, lo)

    def merged(self, more: dict[str, list[PlanEntry]]) -> PlanHistory:
        """A copy with ``more`` entries added (this history is left as it is)."""
        out = PlanHistory()
        out._entries = dict(self._entries)
        for account, entries in more.items():
            out.extend(account, entries)
        return out


PLAN_NAMING = (SubscriptionStarted, SubscriptionChanged, TrialConverted)
"""Payloads that set an account's plan from their event time on (metrics.md, Segments)."""

_NAMING_TYPES = frozenset(PLAN_NAMING)
"""The same, to look a payload's own type up: ``isinstance`` of a Struct goes through its
metaclass and cost 200 ns an event here, for every batch of every family (none of
these types is subclassed)."""


def plan_events(
    offered: Sequence[Offered], labels: Mapping[str, str]
) -> dict[str, list[PlanEntry]]:
    """Account -> (time, offset, bounded label) of the batch's plan-naming events.

    Every valid one counts, stale or not: the plan at T is the latest naming at or
    before T whatever order the events arrived in.
    """
    named: dict[str, list[PlanEntry]] = {}
    if _NAMING_TYPES.isdisjoint([type(item.event.data) for item in offered]):
        return named  # the usual batch: one of logins, tickets or surveys
    for item in offered:
        data = item.event.data
        if isinstance(data, PLAN_NAMING):
            label = labels.get(data.plan, data.plan)
            named.setdefault(item.event.account_id, []).append(
                (item.event.time, item.offset, label)
            )
    return named


def by_plan(
    plans: PlanHistory, account: str, events: list[Event], times: list[float]
) -> dict[str, tuple[list[Event], list[float]]]:
    """A session's events split by the plan at each one's own time."""
    groups: dict[str, tuple[list[Event], list[float]]] = {}
    for event, ts in zip(events, times, strict=True):
        part, part_times = groups.setdefault(plans.at(account, ts), ([], []))
        part.append(event)
        part_times.append(ts)
    return groups
