"""Faults for tests: families whose code raises on chosen events.

Production code has no fault hook: a test wraps a family of the registry
(:data:`aggregators.families.FAMILIES`) so that one of its methods raises
for the events named, as a bug would. ``python -m tests.faulty_worker`` is
the ``cspulse`` command with every family wrapped so.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from aggregators.families import FAMILIES, Family
from schemas import Event

ENTITY_PARTS = ("key", "fold", "contribute")
"""Where an entity can be made to fail (``contribute``: of a state one of the
named events was folded into)."""


class Injected(RuntimeError):
    """The fault a test asked for."""


class FaultyEntity:
    """An entity that raises in ``part`` for the events whose id is in ``ids``."""

    def __init__(self, inner: Any, ids: frozenset[str], part: str) -> None:
        self.inner, self.ids, self.part = inner, ids, part
        self.marked: set[int] = set()
        """ids of the states a named event was folded into (for ``contribute``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def key(self, event: Event) -> Any:
        if self.part == "key" and event.id in self.ids:
            raise Injected(f"fault injected in key for event {event.id}")
        return self.inner.key(event)

    def fold(self, state: Any, event: Event, offset: int, labels: Mapping[str, str]) -> bool:
        if event.id in self.ids:
            if self.part == "fold":
                raise Injected(f"fault injected in fold for event {event.id}")
            self.marked.add(id(state))
        return bool(self.inner.fold(state, event, offset, labels))

    def contribute(self, state: Any, config: Any) -> Any:
        if self.part == "contribute" and id(state) in self.marked:
            raise Injected("fault injected in contribute")
        return self.inner.contribute(state, config)


class FaultyFacts:
    """Facts that raise for an account whose batch holds one of ``ids``."""

    def __init__(self, inner: Any, ids: frozenset[str]) -> None:
        self.inner, self.ids = inner, ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def facts(self, previous: Any, events: Sequence[Event], changes: Any, config: Any) -> Any:
        named = [e.id for e in events if e.id in self.ids]
        if named:
            raise Injected(f"fault injected in facts for event {named[0]}")
        return self.inner.facts(previous, events, changes, config)


def faulty(family: Family[Any, Any], ids: frozenset[str], part: str = "fold") -> Family[Any, Any]:
    """``family`` with ``part`` (an entity part, or ``facts``) raising for ``ids``. A family
    without an entity fails in ``facts`` instead."""
    if part == "facts" or family.entity is None:
        facts: Any = FaultyFacts(family.facts, ids)
        return dataclasses.replace(family, facts=facts)
    entity: Any = FaultyEntity(family.entity, ids, part)
    return dataclasses.replace(family, entity=entity)


def install(ids: frozenset[str], part: str = "fold", names: Sequence[str] = ()) -> None:
    """Wrap the registry's families (all, or ``names``) for the rest of the process."""
    for name in names or list(FAMILIES):
        FAMILIES[name] = faulty(FAMILIES[name], ids, part)


@contextlib.contextmanager
def installed(ids: frozenset[str], part: str = "fold", names: Sequence[str] = ()) -> Iterator[None]:
    """:func:`install` for the duration of a ``with`` block."""
    saved = dict(FAMILIES)
    install(ids, part, names)
    try:
        yield
    finally:
        FAMILIES.clear()
        FAMILIES.update(saved)
