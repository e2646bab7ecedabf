"""What one batch does to the state: a pure, pre-aggregated description.

A batch of events becomes one :class:`Effects` value: counter deltas per
event-time bucket, HyperLogLog members, per-partition gauge deltas, entity
writes and live-session updates. The Redis layer turns it into a single
atomic script call, so the pure part decides *what* changes and the I/O part
only decides *how* it is written.

Entities (a ticket, a session, a billing account) change their contribution
to the buckets as out-of-order events arrive. Each entity's contribution is a
pure function of its state; the batch applies ``new - old``, which retracts
and re-adds exactly what moved (a late reopen leaves the FCR numerator of the
bucket where the ticket was resolved, a late heartbeat splits a gap in two).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aggregators.plans import NONE, segmented
from aggregators.windows import bucket_of

Contribution = dict[tuple[str, float], float]
"""(counter field, event time) -> amount an entity adds to that time's buckets."""

Gauges = dict[str, float]
"""Per-partition, non-windowed amounts (backlog, MRR, paying accounts)."""


@dataclass
class Effects:
    """The pre-aggregated writes of one batch for one topic-partition."""

    counters: defaultdict[tuple[int, int], defaultdict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    last_seen: defaultdict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    """Distinct-count name -> member -> latest event time seen in this batch."""
    gauges: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    entities: dict[str, Any] = field(default_factory=dict)
    """Entity key -> new state (JSON-able), or None to delete it."""
    persistent: set[str] = field(default_factory=set)
    """Entity keys that must not expire (open tickets, billing accounts)."""
    live: dict[str, float | None] = field(default_factory=dict)
    """Live-session member -> latest event time, or None when it ended."""
    stale: int = 0
    plans: dict[str, str] = field(default_factory=dict)
    """Account -> plan label at the time of this batch (input, read from Redis)."""
    labels: dict[str, str] = field(default_factory=dict)
    """Raw plan name -> bounded plan label (input, resolved in Redis)."""
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Account -> this family's health facts for the account (full values)."""
    plan_updates: dict[str, str] = field(default_factory=dict)
    """Account -> plan label after this batch (billing output)."""

    def count(
        self,
        field_name: str,
        ts: float,
        amount: float,
        granularities: tuple[int, ...],
        account: str | None = None,
    ) -> None:
        """Add ``amount`` to ``field_name`` in the bucket of ``ts`` at every granularity,
        and to the segment of the account's plan when ``account`` is given."""
        names = [field_name]
        if account is not None:
            names.append(segmented(field_name, self.plans.get(account, NONE)))
        for g in granularities:
            bucket = self.counters[(g, bucket_of(ts, g))]
            for name in names:
                bucket[name] += amount

    def distinct(self, name: str, member: str, ts: float, account: str) -> None:
        """Note that ``member`` was active at ``ts`` (exact distinct counts by latest time)."""
        for n in (name, segmented(name, self.plans.get(account, NONE))):
            seen = self.last_seen[n]
            if ts > seen.get(member, float("-inf")):
                seen[member] = ts

    def apply_diff(
        self,
        old: Contribution,
        new: Contribution,
        granularities: tuple[int, ...],
        since: float,
    ) -> None:
        """Apply ``new - old``, ignoring times before ``since`` (expired buckets)."""
        for (name, ts), amount in new.items():
            if ts >= since:
                delta = amount - old.get((name, ts), 0.0)
                if delta:
                    self.count(name, ts, delta, granularities)
        for (name, ts), amount in old.items():
            if ts >= since and (name, ts) not in new and amount:
                self.count(name, ts, -amount, granularities)

    def shift_gauges(self, old: Mapping[str, float], new: Mapping[str, float]) -> None:
        for name in old.keys() | new.keys():
            delta = new.get(name, 0.0) - old.get(name, 0.0)
            if delta:
                self.gauges[name] += delta
