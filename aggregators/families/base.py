"""The interfaces an event family implements, and the bundle the planner drives.

A family has up to three parts, each typed:

* a :class:`Counter`: stateless, per-event windowed amounts (a survey answer
  adds to its bucket's counters and nothing else);
* an :class:`Entity` over a state type ``S``: events that change something
  that lives on (a ticket, a session, a billing account) are folded into
  that entity's state, and the entity's contribution to the buckets and
  gauges is a pure function of its state, diffed once per batch;
* a :class:`FactSource`: the family's health facts of an account, as one
  typed value per account.

Every method is pure: it reads its arguments, mutates nothing but the state
or tally it is handed, and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from aggregators.config import MetricConfig
from aggregators.effects import Contribution, Tally
from aggregators.entity_keys import EntityKey
from aggregators.facts import Facts
from schemas import Event

S = TypeVar("S", bound=msgspec.Struct)
F = TypeVar("F", bound=Facts)


class Counter(Protocol):
    """Stateless per-event amounts."""

    def count(self, event: Event, segment: str, tally: Tally, config: MetricConfig) -> None:
        """Add the event's windowed amounts to ``tally`` (``segment``: its account's plan)."""


@dataclass(frozen=True, slots=True)
class Kept(Generic[S]):
    """An entity state to write back after a batch."""

    state: S
    persistent: bool
    """True: never expires (an open ticket, a billing account); False: expires after its TTL."""


class Entity(Protocol[S]):
    """State that events fold into; its contribution is a pure function of it."""

    state_type: type[S]
    applies_late: bool
    """Whether an event too late for its buckets still changes this state (metrics.md
    "Lateness"): True for current state such as a ticket's or a subscription's."""
    tracks_live: bool
    """Whether the entity is a session whose latest time feeds the live-session set."""

    def key(self, event: Event) -> EntityKey | None:
        """The entity the event updates; None: the event updates no entity."""

    def new(self, event: Event, segment: str) -> S:
        """State of an entity first seen with ``event``; ``segment``: its account's plan."""

    def fold(self, state: S, event: Event, offset: int, labels: Mapping[str, str]) -> bool:
        """Fold one event into ``state`` in place. False: the event was stale and changed
        nothing. ``labels``: raw plan name -> bounded plan label."""

    def place(self, state: S, before: S | None, plan_at: Callable[[float], str]) -> None:
        """Set the plan segment ``state`` counts in when the time the contract names for it
        (a ticket's opening, a session's start) arrived or moved in this batch (``before``:
        the state as loaded); entities without a segment do nothing."""

    def contribute(self, state: S, config: MetricConfig) -> Contribution:
        """What the state adds to the buckets and gauges; never mutates ``state``."""

    def finish(self, state: S, cutoff: float) -> Kept[S] | None:
        """The state to keep after a batch, compacted for ``cutoff`` (the earliest event
        time a retained bucket holds); None deletes it."""


@dataclass(frozen=True, slots=True)
class Change(Generic[S]):
    """One entity touched by a batch: its state before (None: new) and after (None: deleted)."""

    before: S | None
    after: S | None
    contribution: Contribution | None = None
    """What ``after`` contributes (None when deleted), so facts need not recompute it."""


class FactSource(Protocol[S, F]):
    """A family's health facts of one account."""

    facts_type: type[F]

    def facts(
        self,
        previous: F,
        events: Sequence[Event],
        changes: Sequence[Change[S]],
        config: MetricConfig,
    ) -> F:
        """The account's facts after a batch, from ``previous`` (defaults when none), the
        account's applied events and its touched entities. May return ``previous`` updated."""


@dataclass(frozen=True)
class Family(Generic[S, F]):
    """One topic's event family: what the batch planner drives."""

    name: str
    counter: Counter | None
    entity: Entity[S] | None
    facts: FactSource[S, F]
    fields: frozenset[str] = frozenset()
    """Every counter, gauge and distinct-count name the family writes (without ``@plan``):
    the names :mod:`aggregators.readout` may read (:func:`aggregators.families.declared_fields`)."""
    batch_keys: Callable[[Sequence[Event]], list[EntityKey | None]] | None = None
    """Each event's entity key for a whole batch at once (else ``entity.key`` per event)."""
    distinct: tuple[str, ...] = ()
    """Distinct-count names whose last-seen sets the family keeps per partition (read and
    united across partitions at scrape time)."""
    window_counts: Mapping[str, str] = field(default_factory=dict)
    """Counter field -> the catalogue metric (``cs_...{window}``) that serves its windowed
    sum as it is: a new count needs only its field here and its catalogue entry."""
    by_session: bool = False
    """Fold a batch an entity at a time (:func:`aggregators.batch.fold_by_session`, the
    logins' fast path) instead of event by event."""
    _encoder: msgspec.json.Encoder = field(
        default_factory=msgspec.json.Encoder, repr=False, compare=False
    )

    def decode(self, raw: bytes | str) -> S:
        """Decode an entity state written by :meth:`encode`."""
        assert self.entity is not None, f"{self.name} keeps no entity state"
        return _decoder(self.entity.state_type).decode(raw)

    def encode(self, state: msgspec.Struct) -> str:
        """Compact JSON (array-like structs): text, as the apply script's msgpack reader
        takes strings but no binary values."""
        return self._encoder.encode(state).decode()

    def decode_facts(self, raw: bytes | str) -> F:
        return _decoder(self.facts.facts_type).decode(raw)


_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[S]) -> msgspec.json.Decoder[S]:
    found = _DECODERS.get(kind)
    if found is None:
        found = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return found
