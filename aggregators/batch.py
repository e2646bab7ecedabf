"""Plan one batch: from validated events and loaded state to :class:`Effects`.

Pure. The Redis layer loads what :func:`keys_to_load` names (entity states
and which event ids were already seen), calls :func:`plan_batch`, and writes
the resulting effects atomically with the partition's new offset.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aggregators.config import BatchClock, MetricConfig
from aggregators.effects import Contribution, Effects, Gauges
from aggregators.families import FAMILIES, Family
from aggregators.families.base import State
from aggregators.families.tickets import ACCOUNT_FACT
from aggregators.plans import NONE
from aggregators.windows import is_too_late, retention_cutoff
from schemas import Event


def event_digest(event_id: str) -> str:
    """Short, fixed-size stand-in for an event id in the dedup sets (64 bits, hex)."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Offered:
    """A valid event offered to a batch, with its Kafka offset."""

    offset: int
    event: Event


@dataclass
class Outcome:
    """What happened to each offered event (for counters and dead letters)."""

    applied: Counter[str] = field(default_factory=Counter)
    """Applied events by type."""
    duplicates: int = 0
    late: list[Offered] = field(default_factory=list)
    stale: int = 0
    failed: list[tuple[Offered, str]] = field(default_factory=list)
    """Events an aggregator could not process (poison messages), with why."""
    max_event_time: float | None = None


@dataclass
class Plan:
    effects: Effects
    outcome: Outcome
    seen: dict[str, float]
    """Digest -> event time of the event ids applied in this batch (to remember)."""


def keys_to_load(family_name: str, events: Sequence[Event]) -> tuple[set[str], dict[str, float]]:
    """Entity keys, and id digests with their event times, the planner needs from Redis."""
    family = FAMILIES[family_name]
    entity_keys = {key for e in events if (key := family.entity_key(e)) is not None}
    entity_keys |= {facts_key(e.account_id) for e in events}
    digests = {event_digest(e.id): e.time for e in events}
    return entity_keys, digests


def facts_key(account: str) -> str:
    """Entity key of an account's health facts within a partition."""
    return f"f:{account}"


def make_clock(config: MetricConfig, t: float) -> BatchClock:
    return BatchClock(t=t, cutoff=retention_cutoff(config.windows, t))


def plan_batch(
    family_name: str,
    offered: Sequence[Offered],
    states: Mapping[str, State | None],
    seen: set[str],
    config: MetricConfig,
    clock: BatchClock,
    *,
    advance_clock: bool = False,
    plans: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> Plan:
    """Fold a batch into effects. ``seen``: digests already applied (from Redis).

    With ``advance_clock`` (the watermark clock) lateness is judged against
    the largest event time applied so far, the batch's own events included.
    """
    family = FAMILIES[family_name]
    effects, outcome = Effects(plans=plans or {}, labels=labels or {}), Outcome()
    touched: dict[str, tuple[State, Contribution, Gauges]] = {}
    applied_digests: dict[str, float] = {}
    batch_seen: set[str] = set()
    t = clock.t
    for item in offered:
        event = item.event
        digest = event_digest(event.id)
        if digest in seen or digest in batch_seen:
            outcome.duplicates += 1
            continue
        if is_too_late(event.time, config.windows, t):
            outcome.late.append(item)
            continue
        stale_before = effects.stale
        try:
            _apply_event(family, item, states, touched, effects, config)
        except Exception as exc:  # a poison event must not stop the partition
            outcome.failed.append((item, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        batch_seen.add(digest)
        applied_digests[digest] = event.time
        outcome.stale += effects.stale - stale_before
        outcome.applied[event.type] += 1
        outcome.max_event_time = max(outcome.max_event_time or event.time, event.time)
        if advance_clock:
            t = max(t, event.time)
    final_clock = make_clock(config, t) if advance_clock else clock
    for key, (state, old_contribution, old_gauges) in touched.items():
        _finish_entity(
            family, key, state, old_contribution, old_gauges, effects, config, final_clock
        )
    for account, facts in effects.facts.items():
        effects.entities[facts_key(account)] = facts
    return Plan(effects=effects, outcome=outcome, seen=applied_digests)


def _apply_event(
    family: Family,
    item: Offered,
    states: Mapping[str, State | None],
    touched: dict[str, tuple[State, Contribution, Gauges]],
    effects: Effects,
    config: MetricConfig,
) -> None:
    event = item.event
    if event.id in config.fault_injection_ids:
        raise RuntimeError(f"fault injected for event {event.id}")
    family.count(event, effects, config)
    facts = effects.facts.get(event.account_id)
    if facts is None:
        facts = effects.facts[event.account_id] = states.get(facts_key(event.account_id)) or {}
    family.note(facts, event, config)
    facts["last"] = max(facts.get("last", event.time), event.time)
    key = family.entity_key(event)
    if key is None:
        return
    if key not in touched:
        state = states.get(key)
        if state is None:
            state = family.new_state(event)
            if "p" in state:  # the segment an entity counts in: its account's plan when first seen
                state["p"] = effects.plans.get(event.account_id, NONE)
        touched[key] = (state, *family.contribute(state, config))
    family.update(touched[key][0], event, item.offset, effects)


def _finish_entity(
    family: Family,
    key: str,
    state: State,
    old_contribution: Contribution,
    old_gauges: Gauges,
    effects: Effects,
    config: MetricConfig,
    clock: BatchClock,
) -> None:
    final: Any = family.finish(key, state, effects, config, clock)
    new_contribution, new_gauges = family.contribute(final, config) if final else ({}, {})
    effects.apply_diff(old_contribution, new_contribution, config.granularities, clock.cutoff)
    _shift_account_facts(state, old_gauges, new_gauges, effects)
    effects.shift_gauges(
        {k: v for k, v in old_gauges.items() if not k.startswith(ACCOUNT_FACT)},
        {k: v for k, v in new_gauges.items() if not k.startswith(ACCOUNT_FACT)},
    )
    effects.entities[key] = final


def _shift_account_facts(state: State, old: Gauges, new: Gauges, effects: Effects) -> None:
    """Gauges named ``~x`` are per-account facts: add their change to the account's facts."""
    names = {k for k in (*old, *new) if k.startswith(ACCOUNT_FACT)}
    if not names or "a" not in state:
        return
    facts = effects.facts.setdefault(state["a"], {})
    for name in names:
        delta = new.get(name, 0.0) - old.get(name, 0.0)
        if delta:
            field_name = name[len(ACCOUNT_FACT) :]
            facts[field_name] = facts.get(field_name, 0.0) + delta
