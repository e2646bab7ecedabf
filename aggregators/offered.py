"""What a batch's fold takes and gives: offered events, stored input, outcome, result.

:mod:`aggregators.batch` folds; this module holds its data (pure), and
:class:`FamilyFault`, how a family's failure names the events behind it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from aggregators.effects import Effects
from aggregators.entity_keys import EntityKey
from aggregators.plans import PlanHistory
from schemas import Event

UNKNOWN: Final[EntityKey] = EntityKey("?", "")
"""An :class:`Offered` item's entity key before it is looked up (or when the family's
code fails on the event): a key of no kind, compared by identity."""


_BLAKE2B_8: Final = hashlib.blake2b(digest_size=8)
"""An empty 64-bit BLAKE2b: a copy of it, fed an id, hashes the id. Copying skips the
constructor's parsing of its ten keyword parameters, a third of a digest's cost."""


def event_digest(event_id: str) -> str:
    """Short, fixed-size stand-in for an event id in the dedup index (64 bits, hex)."""
    digest = _BLAKE2B_8.copy()
    digest.update(event_id.encode())
    return digest.hexdigest()


class Offered(msgspec.Struct, gc=False):
    """A valid event offered to a batch, with its Kafka offset and id digest.

    A Struct (built in C): one is made per event. :func:`offer` computes the
    digest; :func:`offer_all` does a whole batch in one pass.
    """

    offset: int
    event: Event
    digest: str
    key: EntityKey | None = UNKNOWN
    """The entity the event updates, once :func:`keys_to_load` has found it."""


def offer(offset: int, event: Event) -> Offered:
    """One event offered at ``offset``, with its id digest."""
    return Offered(offset, event, event_digest(event.id))


def offer_all(offsets: Sequence[int], events: Sequence[Event]) -> list[Offered]:
    """Events offered at their offsets, digests computed in one pass."""
    copy = _BLAKE2B_8.copy
    digests = []
    for event in events:  # event_digest, inlined: this runs for every event
        digest = copy()
        digest.update(event.id.encode())
        digests.append(digest.hexdigest())
    if len(offsets) != len(events):
        raise ValueError(f"{len(offsets)} offsets for {len(events)} events")
    return list(map(Offered, offsets, events, digests))


@dataclass(frozen=True)
class BatchInput:
    """What Redis holds for a batch (read by :meth:`PartitionStore.load`)."""

    states: Mapping[EntityKey, bytes | str] = field(default_factory=dict)
    """Encoded entity states and per-account facts, as stored."""
    seen: Collection[str] = frozenset()
    """Digests of the batch's ids that were applied before."""
    plans: PlanHistory = field(default_factory=PlanHistory)
    """Each account's plan over event time (the segment its events count in)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Raw plan name -> bounded plan label."""


@dataclass
class Outcome:
    """What happened to each offered event (for counters and dead letters)."""

    applied: Counter[str] = field(default_factory=Counter)
    """Applied events by type (too-late events that changed state included)."""
    duplicates: int = 0
    late: int = 0
    """Events too late for their buckets, applied to state or not."""
    too_late: list[Offered] = field(default_factory=list)
    """Too-late events that change no state: to dead-letter as ``too_late``."""
    stale: int = 0
    failed: list[tuple[Offered, str]] = field(default_factory=list)
    """Events the family's code failed on (a bug, or data it cannot take), with why."""
    error: BaseException | None = None
    """The first exception behind :attr:`failed` (its traceback, for a worker that stops)."""
    max_event_time: float | None = None


@dataclass
class BatchResult:
    effects: Effects
    outcome: Outcome
    seen: dict[str, float]
    """Digest -> event time of the event ids applied in this batch (to remember)."""


def key_or_unknown(entity: Any, event: Event) -> EntityKey | None:
    """The entity's key of the event, or UNKNOWN when the family's code fails on it (the
    fold then fails the event alone)."""
    try:
        key: EntityKey | None = entity.key(event)
    except Exception:
        return UNKNOWN
    return key


class FamilyFault(Exception):
    """A family's code raised while finishing an entity (``key``) or an account's facts
    (``account``): the batch's events of that entity or account caused it."""

    def __init__(
        self, error: BaseException, *, key: EntityKey | None = None, account: str | None = None
    ) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error, self.key, self.account = error, key, account
        self.detail = f"{type(error).__name__}: {error}"[:300]

    def caused_by(self, item: Offered) -> bool:
        if self.key is not None:
            return item.key == self.key
        return item.event.account_id == self.account
