"""Fold one batch of one topic-partition into :class:`~aggregators.effects.Effects`.

Pure: :func:`fold_batch` gets the batch's events and what Redis holds for
them (:class:`BatchInput`) and returns the writes (:class:`BatchResult`);
:mod:`aggregators.store` loads the input and applies the result atomically.

Per event: a duplicate id is skipped; an event too late for every retained
bucket still changes current state when its family says so (a ticket, a
subscription) and is otherwise handed back to be dead-lettered; the rest
feeds the family's counter and entity. Each touched entity's contribution is
diffed once, at the end, and each touched account's facts computed once.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from aggregators.config import BatchClock, MetricConfig
from aggregators.effects import EMPTY, Effects, Tally
from aggregators.entity_keys import EntityKey, facts_key
from aggregators.families import FAMILIES, Family
from aggregators.families.base import Change
from aggregators.families.sessions import SessionState
from aggregators.offered import (
    UNKNOWN,
    BatchInput,
    BatchResult,
    FamilyFault,
    Offered,
    Outcome,
    event_digest,
    key_or_unknown,
    offer,
    offer_all,
)
from aggregators.plans import by_plan, plan_events
from aggregators.session_fold import (
    HEARTBEAT,
    add_new_gaps,
    arrives_late,
    copy_state,
    count_session,
    facts_sample,
    live_time,
    merge_times,
)
from aggregators.windows import retention_cutoff
from schemas import Event

__all__ = [
    "UNKNOWN",
    "BatchInput",
    "BatchResult",
    "FamilyFault",
    "Offered",
    "Outcome",
    "event_digest",
    "fold_batch",
    "keys_to_load",
    "make_clock",
    "offer",
    "offer_all",
]


def keys_to_load(family_name: str, offered: Sequence[Offered]) -> set[EntityKey]:
    """Entity and facts keys the planner needs from Redis for these events (each
    event's entity key is kept on its item, for the fold)."""
    family = FAMILIES[family_name]
    entity = family.entity
    wanted = {facts_key(account) for account in {o.event.account_id for o in offered}}
    if entity is None:
        return wanted
    try:
        if family.batch_keys is not None:
            found = family.batch_keys([item.event for item in offered])
        else:
            found = [entity.key(item.event) for item in offered]
    except Exception:  # the family's code failed on an event: the fold finds which
        found = [key_or_unknown(entity, item.event) for item in offered]
    for item, key in zip(offered, found, strict=True):
        item.key = key
    wanted.update(key for key in set(found) if key is not None and key is not UNKNOWN)
    return wanted


def make_clock(config: MetricConfig, t: float, *, advancing: bool = False) -> BatchClock:
    """The clock of a batch read at ``t``; ``advancing`` for stream time."""
    return BatchClock(t=t, cutoff=retention_cutoff(config.windows, t), advancing=advancing)


class _Fold:
    """The working state of one batch: touched entities, accounts, the tally."""

    def __init__(self, family: Family[Any, Any], inputs: BatchInput, config: MetricConfig) -> None:
        self.family, self.inputs, self.config = family, inputs, config
        self.entity, self.counter = family.entity, family.counter
        self.plans, self.labels = inputs.plans, inputs.labels
        self.tally = Tally(config.granularities)
        self.touched: dict[EntityKey, tuple[bytes | str | None, Any]] = {}
        """Key -> (state as loaded, state being folded)."""
        self.events: dict[str, list[Event]] = {}
        """Account -> its events applied in this batch."""
        self.cutoff = -math.inf
        """The batch's final cutoff (set by the session fold's admission)."""
        self.marked: set[EntityKey] = set()
        """Sessions with an event other than a heartbeat in the batch (the session fold)."""

    def state(self, key: EntityKey, event: Event) -> Any:
        found = self.touched.get(key)
        if found is not None:
            return found[1]
        assert self.family.entity is not None
        raw = self.inputs.states.get(key)
        if raw is None:
            segment = self.plans.at(event.account_id, event.time)
            state = self.family.entity.new(event, segment)
        else:
            state = self.family.decode(raw)
        self.touched[key] = (raw, state)
        return state


def fold_batch(
    family_name: str,
    offered: Sequence[Offered],
    inputs: BatchInput,
    config: MetricConfig,
    clock: BatchClock,
) -> BatchResult:
    """Fold a batch into effects, judged against ``clock`` (see :class:`BatchClock`).

    An exception from the family's code is the fault of the events that led to
    it: an event's own ``key``, ``count`` or ``fold`` fails it alone; a touched
    entity's ``place``, ``contribute`` or ``finish`` fails the events of that
    entity, an account's ``facts`` the account's events. Those come back in
    :attr:`Outcome.failed` (to dead-letter) and the batch is folded again
    without them. An exception from anywhere else is raised.
    """
    failed: list[tuple[Offered, str]] = []
    first: BaseException | None = None
    while True:
        try:
            result = _fold_batch(family_name, offered, inputs, config, clock)
            break
        except FamilyFault as fault:
            culprits = [item for item in offered if fault.caused_by(item)]
            if not culprits:
                raise fault.error from fault
            first = first or fault.error
            failed += [(item, fault.detail) for item in culprits]
            offered = [item for item in offered if not fault.caused_by(item)]
    if failed:
        outcome = result.outcome
        outcome.failed = sorted([*outcome.failed, *failed], key=lambda f: f[0].offset)
        outcome.error = outcome.error or first
    return result


def _fold_batch(
    family_name: str,
    offered: Sequence[Offered],
    inputs: BatchInput,
    config: MetricConfig,
    clock: BatchClock,
) -> BatchResult:
    fold = fold_by_session if FAMILIES[family_name].by_session else fold_each
    named = plan_events(offered, inputs.labels)
    if named:
        inputs = replace(inputs, plans=inputs.plans.merged(named))
    result = fold(family_name, offered, inputs, config, clock)
    result.effects.plan_events = named
    return result


def fold_each(
    family_name: str,
    offered: Sequence[Offered],
    inputs: BatchInput,
    config: MetricConfig,
    clock: BatchClock,
) -> BatchResult:
    """Fold a batch event by event (every family; logins take :func:`fold_by_session`)."""
    fold = _Fold(FAMILIES[family_name], inputs, config)
    outcome, applied = Outcome(), dict[str, float]()
    applied_types: dict[str, int] = {}
    judge = _Judge(config, clock, inputs.seen, applied)
    newest = -math.inf
    entity, counter, plans, tally = fold.entity, fold.counter, fold.plans, fold.tally
    applies_late = entity is not None and entity.applies_late
    labels, per_account = fold.labels, fold.events
    for item in offered:
        digest, event, ts = item.digest, item.event, item.event.time
        if judge.repeated(digest, outcome):
            continue
        late = ts < judge.cutoff_at(ts)
        # counted unless late; folded into its entity unless too late for it
        try:
            key = item.key
            if key is UNKNOWN:
                key = item.key = entity.key(event) if entity is not None else None
            if late and (key is None or not applies_late):
                outcome.late += 1
                outcome.too_late.append(item)
                judge.late.add(digest)
                continue
            if not late and counter is not None:
                counter.count(event, plans.at(event.account_id, ts), tally, config)
            if key is None or entity is None:
                folded = True
            else:
                found = fold.touched.get(key)
                current = found[1] if found is not None else fold.state(key, event)
                folded = entity.fold(current, event, item.offset, labels)
        except Exception as exc:  # the family's code failed on this event: dead-letter it
            outcome.failed.append((item, f"{type(exc).__name__}: {exc}"[:300]))
            outcome.error = outcome.error or exc
            continue
        if late:
            outcome.late += 1
        if not folded:
            outcome.stale += 1
        event_type = event.type
        applied_types[event_type] = applied_types.get(event_type, 0) + 1
        applied[digest] = ts
        account = event.account_id
        events = per_account.get(account)
        if events is None:
            per_account[account] = [event]
        else:
            events.append(event)
        if ts > newest:
            newest = ts
    outcome.applied.update(applied_types)
    outcome.max_event_time = newest if applied else None
    effects = Effects()
    changes = _finish_entities(fold, effects, judge.cutoff)
    _account_facts(fold, effects, changes)
    fold.tally.into(effects)
    return BatchResult(effects=effects, outcome=outcome, seen=applied)


def fold_by_session(
    family_name: str,
    offered: Sequence[Offered],
    inputs: BatchInput,
    config: MetricConfig,
    clock: BatchClock,
) -> BatchResult:
    """Fold a logins batch a session at a time (:mod:`aggregators.session_fold`); the same
    result as :func:`fold_each`."""
    fold = _Fold(FAMILIES[family_name], inputs, config)
    outcome, applied = Outcome(), dict[str, float]()
    groups = _admit_all(fold, offered, clock, outcome, applied)
    if groups is None:
        groups = _admit_by_session(fold, offered, clock, outcome, applied)
    effects = Effects()
    _fold_sessions(fold, groups, effects)
    _account_facts(fold, effects, {})
    fold.tally.into(effects)
    return BatchResult(effects=effects, outcome=outcome, seen=applied)


def _admit_all(
    fold: _Fold,
    offered: Sequence[Offered],
    clock: BatchClock,
    outcome: Outcome,
    applied: dict[str, float],
) -> dict[EntityKey, list[Event]] | None:
    """:func:`_admit_by_session` for the usual batch, a step at a time over the whole
    batch: when no id repeats, no event is late even for the batch's final cutoff and
    every event has a session. None: take the event-by-event way."""
    if not offered:
        return None
    digests = [item.digest for item in offered]
    times = [item.event.time for item in offered]
    cutoff = _final_cutoff(fold.config, clock, max(times))
    seen = fold.inputs.seen
    unique = len(set(digests)) == len(digests) and (not seen or not any(d in seen for d in digests))
    keys = [item.key for item in offered]
    if not unique or min(times) < cutoff or None in keys or UNKNOWN in keys:
        return None
    groups: dict[EntityKey, list[Event]] = {}
    for key, item in zip(keys, offered, strict=True):
        group = groups.get(key)  # type: ignore[arg-type]
        if group is None:
            groups[key] = [item.event]  # type: ignore[index]
        else:
            group.append(item.event)
    types = [item.event.type for item in offered]
    fold.marked.update(
        key for key, kind in zip(keys, types, strict=True) if kind != HEARTBEAT and key is not None
    )
    outcome.applied.update(types)
    outcome.max_event_time = max(times)
    applied.update(zip(digests, times, strict=True))
    fold.cutoff = cutoff
    return groups


def _final_cutoff(config: MetricConfig, clock: BatchClock, newest: float) -> float:
    """The cutoff after the batch: it moves with stream time when the clock advances."""
    if clock.advancing and newest > clock.t:
        return retention_cutoff(config.windows, newest)
    return clock.cutoff


def _admit_by_session(
    fold: _Fold,
    offered: Sequence[Offered],
    clock: BatchClock,
    outcome: Outcome,
    applied: dict[str, float],
) -> dict[EntityKey, list[Event]]:
    """Skip duplicates, set aside the too-late, group the rest by session (in offset
    order); events of no session are applied as they are."""
    entity, per_account = fold.entity, fold.events
    assert entity is not None
    groups: dict[EntityKey, list[Event]] = {}
    types: dict[str, int] = {}
    marked = fold.marked
    judge = _Judge(fold.config, clock, fold.inputs.seen, applied)
    for item in offered:
        digest, event, ts = item.digest, item.event, item.event.time
        if judge.repeated(digest, outcome):
            continue
        if ts < judge.cutoff_at(ts):
            outcome.late += 1
            outcome.too_late.append(item)
            judge.late.add(digest)
            continue
        key = item.key
        if key is UNKNOWN:
            try:
                key = item.key = entity.key(event)
            except Exception as exc:  # the family's code failed on this event
                outcome.failed.append((item, f"{type(exc).__name__}: {exc}"[:300]))
                outcome.error = outcome.error or exc
                continue
        event_type = event.type
        if key is None:
            per_account.setdefault(event.account_id, []).append(event)
        else:
            group = groups.get(key)
            if group is None:
                groups[key] = [event]
            else:
                group.append(event)
            if event_type != HEARTBEAT:
                marked.add(key)
        types[event_type] = types.get(event_type, 0) + 1
        applied[digest] = ts
    outcome.applied.update(types)
    outcome.max_event_time = max(applied.values()) if applied else None
    fold.cutoff = judge.cutoff
    return groups


def _fold_sessions(fold: _Fold, groups: dict[EntityKey, list[Event]], effects: Effects) -> None:
    """Fold, count and diff each session's events; write its state and live time."""
    for key, events in groups.items():
        try:
            _fold_session(fold, key, events, effects)
        except Exception as exc:  # the family's code failed on this session's events
            raise FamilyFault(exc, key=key) from exc


def _fold_session(fold: _Fold, key: EntityKey, events: list[Event], effects: Effects) -> None:
    config, tally, plans, cutoff = fold.config, fold.tally, fold.plans, fold.cutoff
    account, marked, sessions = key.account, key in fold.marked, fold.entity
    assert sessions is not None
    state: SessionState = fold.state(key, events[0])
    times = [event.time for event in events]
    segment = plans.constant(account, min(times), max(times))
    if segment is not None:
        count_session(events, times, marked, account, segment, tally)
    else:  # the account's plan changed during the batch's span of this session
        for seg, (part, part_times) in by_plan(plans, account, events, times).items():
            count_session(part, part_times, marked, account, seg, tally)
    before = copy_state(state) if arrives_late(state, times) else None
    start = merge_times(state, events, times, marked)
    if before is not None or start == 0:  # a start that arrived or moved: its plan
        sessions.place(state, before, partial(plans.at, account))
    if before is None:
        add_new_gaps(state, start, cutoff, config, tally)
    sessions.finish(state, cutoff)
    if before is not None:
        old = sessions.contribute(before, config)
        tally.apply_diff(old.windowed, sessions.contribute(state, config).windowed, cutoff)
    effects.live[key.member()] = live_time(state)
    effects.entities[key] = fold.family.encode(state)
    fold.events.setdefault(account, []).extend(facts_sample(events, times))


class _Judge:
    """Duplicates and the cutoff, event by event: the rules both folds share."""

    def __init__(
        self,
        config: MetricConfig,
        clock: BatchClock,
        seen: Collection[str],
        applied: Mapping[str, float],
    ) -> None:
        self.config, self.seen, self.applied = config, seen, applied
        self.late: set[str] = set()
        """Digests of this batch's too-late events: a copy is a duplicate, not late again."""
        self.t, self.cutoff, self.advancing = clock.t, clock.cutoff, clock.advancing
        self.next_move = _cutoff_until(config, clock.t)[1] if clock.advancing else math.inf

    def repeated(self, digest: str, outcome: Outcome) -> bool:
        """Whether the id was applied before or earlier in the batch (counted if so)."""
        if digest in self.seen or digest in self.applied or digest in self.late:
            outcome.duplicates += 1
            return True
        return False

    def cutoff_at(self, ts: float) -> float:
        """The cutoff an event at ``ts`` is judged by: stream time moves with events
        under an advancing clock, and the cutoff with it, a coarse bucket at a time."""
        if self.advancing and ts > self.t:
            self.t = ts
            if ts >= self.next_move:
                self.cutoff, self.next_move = _cutoff_until(self.config, ts)
        return self.cutoff


def _cutoff_until(config: MetricConfig, t: float) -> tuple[float, float]:
    """The cutoff at ``t``, and the time from which it moves (the next coarse bucket)."""
    granularity = config.windows.longest.granularity
    return retention_cutoff(config.windows, t), (math.floor(t / granularity) + 1) * granularity


def _finish_entities(
    fold: _Fold, effects: Effects, cutoff: float
) -> defaultdict[str, list[Change[Any]]]:
    """Diff each touched entity's contribution and write its final state."""
    family, config, tally = fold.family, fold.config, fold.tally
    changes: defaultdict[str, list[Change[Any]]] = defaultdict(list)
    entity = family.entity
    if entity is None:
        return changes
    plans = fold.plans
    for key, (raw, state) in fold.touched.items():
        try:
            before = family.decode(raw) if raw is not None else None
            entity.place(state, before, partial(plans.at, key.account))
            kept = entity.finish(state, cutoff)
            old = entity.contribute(before, config) if before is not None else EMPTY
            new = entity.contribute(kept.state, config) if kept is not None else EMPTY
        except Exception as exc:  # the family's code failed on this entity's events
            raise FamilyFault(exc, key=key) from exc
        tally.apply_diff(old.windowed, new.windowed, cutoff)
        tally.shift_gauges(old.gauges, new.gauges)
        if entity.tracks_live:
            effects.live[key.member()] = new.live
        if kept is None:
            effects.entities[key] = None
            changes[key.account].append(Change(before, None))
            continue
        effects.entities[key] = family.encode(kept.state)
        if kept.persistent:
            effects.persistent.add(key)
        changes[key.account].append(Change(before, kept.state, new))
    return changes


def _account_facts(fold: _Fold, effects: Effects, changes: Mapping[str, list[Change[Any]]]) -> None:
    """Each touched account's facts: the family's one say on the account's health."""
    family, states = fold.family, fold.inputs.states
    for account in fold.events.keys() | changes.keys():
        key = facts_key(account)
        raw = states.get(key)
        previous = family.decode_facts(raw) if raw is not None else family.facts.facts_type()
        events = fold.events.get(account, [])
        try:
            facts = family.facts.facts(previous, events, changes.get(account, []), fold.config)
        except Exception as exc:  # the family's code failed on this account's events
            raise FamilyFault(exc, account=account) from exc
        if events:
            facts.last = max(facts.last, max(e.time for e in events))
        effects.facts[account] = facts
        effects.entities[key] = family.encode(facts)
        if facts.persistent():
            effects.persistent.add(key)
