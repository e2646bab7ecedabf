"""The interface every event family implements."""

from __future__ import annotations

from typing import Any, Protocol

from aggregators.config import BatchClock, MetricConfig
from aggregators.effects import Contribution, Effects, Gauges
from schemas import Event

State = dict[str, Any]


class Family(Protocol):
    """How one topic's events turn into state changes.

    Stateless effects (plain counts) go straight into :class:`Effects`;
    entity state is loaded once per batch, updated per event, and its
    contribution diffed once at the end of the batch.
    """

    def entity_key(self, event: Event) -> str | None:
        """Key of the entity the event updates, or None for a stateless event."""

    def new_state(self, event: Event) -> State:
        """State of an entity seen for the first time."""

    def update(self, state: State, event: Event, offset: int, effects: Effects) -> None:
        """Fold one event into its entity's state (in place)."""

    def count(self, event: Event, effects: Effects, config: MetricConfig) -> None:
        """Stateless per-event effects (counters, distinct members)."""

    def contribute(self, state: State, config: MetricConfig) -> tuple[Contribution, Gauges]:
        """What an entity adds to the buckets and to the partition gauges."""

    def note(self, facts: State, event: Event, config: MetricConfig) -> None:
        """Fold one event into its account's health facts (see aggregators/health.py)."""

    def finish(
        self, key: str, state: State, effects: Effects, config: MetricConfig, clock: BatchClock
    ) -> State | None:
        """Last word on a touched entity: compact it, mark it persistent, or drop it."""
