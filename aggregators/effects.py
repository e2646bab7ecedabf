"""What one batch does to the state: a pure, pre-aggregated description.

A batch of events becomes one :class:`Effects` value: counter deltas per
event-time bucket, distinct members with their latest event time,
per-partition gauge deltas, entity writes, live-session updates and the
accounts' health facts. The Redis layer turns it into a single atomic
script call, so the pure part decides *what* changes and the I/O part only
decides *how* it is written.

Entities (a ticket, a session, a billing account) change their contribution
to the buckets as out-of-order events arrive. Each entity's contribution is a
pure function of its state; the batch applies ``new - old``, which retracts
and re-adds exactly what moved (a late reopen leaves the FCR numerator of the
bucket where the ticket was resolved, a late heartbeat splits a gap in two).

While a batch is folded, amounts go into a :class:`Tally` keyed by (field,
plan segment, bucket of the finest granularity); it is expanded to every
granularity and to the whole-base and segment fields once, at the end.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from aggregators.entity_keys import EntityKey
from aggregators.facts import Facts
from aggregators.plans import PlanEntry, segmented

Windowed = dict[tuple[str, str, float], float]
"""(counter field, plan segment, event time) -> amount an entity adds to that time's buckets."""

Gauges = dict[tuple[str, str], float]
"""(gauge field, plan segment) -> per-partition, non-windowed amount (backlog, MRR)."""


@dataclass(slots=True)
class Contribution:
    """What one entity state adds to the partition: a pure function of the state."""

    windowed: Windowed = field(default_factory=dict)
    gauges: Gauges = field(default_factory=dict)
    live: float | None = None
    """Latest event time of a live session; None when the entity is not a live session."""


EMPTY = Contribution()

Counters = defaultdict[tuple[int, int], defaultdict[str, float]]
"""(granularity, bucket index) -> field -> amount."""


def _new_counters() -> Counters:
    return defaultdict(_new_field_amounts)


def _new_field_amounts() -> defaultdict[str, float]:
    return defaultdict(float)


def _new_last_seen() -> defaultdict[str, dict[str, float]]:
    return defaultdict(dict)


@dataclass
class Effects:
    """The writes of one batch for one topic-partition (outputs only)."""

    counters: Counters = field(default_factory=_new_counters)
    last_seen: defaultdict[str, dict[str, float]] = field(default_factory=_new_last_seen)
    """Distinct-count name -> member -> latest event time seen in this batch."""
    gauges: defaultdict[str, float] = field(default_factory=_new_field_amounts)
    entities: dict[EntityKey, str | None] = field(default_factory=dict)
    """Entity key -> new encoded state, or None to delete it."""
    persistent: set[EntityKey] = field(default_factory=set)
    """Entity keys that must not expire (open tickets, billing accounts)."""
    live: dict[str, float | None] = field(default_factory=dict)
    """Live-session member -> latest event time, or None when it ended."""
    facts: dict[str, Facts] = field(default_factory=dict)
    """Account -> this family's health facts for the account (full values)."""
    plan_events: dict[str, list[PlanEntry]] = field(default_factory=dict)
    """Account -> the batch's plan-naming events, for the account's plan history."""


class Tally:
    """Accumulates a batch's windowed amounts, distinct members and gauge deltas.

    Amounts are keyed by the bucket of the finest granularity; every coarser
    granularity that is a multiple of it is derived at the end, so an event
    costs one dict update per field, not one per granularity and segment.
    """

    def __init__(self, granularities: tuple[int, ...]) -> None:
        self.granularities = granularities
        self.finest = min(granularities)
        self.rolls_up = all(g % self.finest == 0 for g in granularities)
        self.amounts: defaultdict[tuple[str, str, float], float] = defaultdict(float)
        self.latest: dict[tuple[str, str, str], float] = {}
        self.gauges: defaultdict[tuple[str, str], float] = defaultdict(float)

    def add(self, name: str, segment: str, ts: float, amount: float) -> None:
        """Add ``amount`` to ``name`` in the buckets of ``ts``, whole base and segment."""
        slot = math.floor(ts / self.finest) if self.rolls_up else ts
        self.amounts[(name, segment, slot)] += amount

    def add_each(self, name: str, segment: str, amounts: Iterable[tuple[float, float]]) -> None:
        """:meth:`add` of each (event time, amount), without a call per amount."""
        totals, finest = self.amounts, self.finest
        for ts, amount in amounts:
            totals[(name, segment, math.floor(ts / finest) if self.rolls_up else ts)] += amount

    def distinct(self, name: str, segment: str, member: str, ts: float) -> None:
        """Note that ``member`` was active at ``ts`` (exact distinct counts by latest time)."""
        key = (name, segment, member)
        if ts > self.latest.get(key, -math.inf):
            self.latest[key] = ts

    def apply_diff(self, old: Windowed, new: Windowed, since: float) -> None:
        """Add ``new - old``, ignoring times before ``since`` (expired buckets)."""
        for key, amount in new.items():
            if key[2] >= since:
                delta = amount - old.get(key, 0.0)
                if delta:
                    self.add(key[0], key[1], key[2], delta)
        for key, amount in old.items():
            if amount and key[2] >= since and key not in new:
                self.add(key[0], key[1], key[2], -amount)

    def shift_gauges(self, old: Gauges, new: Gauges) -> None:
        for key in old.keys() | new.keys():
            delta = new.get(key, 0.0) - old.get(key, 0.0)
            if delta:
                self.gauges[key] += delta

    def into(self, effects: Effects) -> None:
        """Expand the tally into ``effects``: every granularity, whole base plus segment."""
        self._counters_into(effects)
        names = _SegmentedNames()
        for (name, segment, member), ts in self.latest.items():
            for target in (effects.last_seen[name], effects.last_seen[names.of(name, segment)]):
                if ts > target.get(member, -math.inf):
                    target[member] = ts
        for (name, segment), amount in self.gauges.items():
            effects.gauges[name] += amount
            effects.gauges[names.of(name, segment)] += amount

    def _counters_into(self, effects: Effects) -> None:
        """Each amount into its bucket of every granularity, under its name and its
        segment's. Loops written out: a backlog's batch has about one amount per event."""
        counters, finest, granularities = effects.counters, self.finest, self.granularities
        steps = [(g, g // finest) for g in granularities]
        segmented_names: dict[tuple[str, str], str] = {}
        for (name, segment, slot), amount in self.amounts.items():
            if not amount:
                continue
            seg = segmented_names.get((name, segment))
            if seg is None:
                seg = segmented_names[(name, segment)] = segmented(name, segment)
            if self.rolls_up:
                whole = int(slot)
                for g, step in steps:
                    bucket = counters[(g, whole // step)]
                    bucket[name] += amount
                    bucket[seg] += amount
            else:
                for g in granularities:
                    bucket = counters[(g, math.floor(slot / g))]
                    bucket[name] += amount
                    bucket[seg] += amount


class _SegmentedNames:
    """``segmented(name, segment)``, each pair worked out once per batch."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], str] = {}

    def of(self, name: str, segment: str) -> str:
        found = self._names.get((name, segment))
        if found is None:
            found = self._names[(name, segment)] = segmented(name, segment)
        return found
