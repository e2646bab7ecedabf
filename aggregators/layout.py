"""The version of what cspulse keeps in Redis, and the check every process makes.

Stored states are compact msgspec JSON: entity states (:class:`TicketState`,
:class:`SessionState`, :class:`BillingState` and what they hold) are
``array_like``, decoded by position, so reordering two fields of the same
type would read every stored value back wrong with no error; facts are
decoded by name, so a renamed field would read its default. Any such change
is a new layout: :data:`LAYOUT_VERSION` goes up and the fingerprint of the
state structs (their names, fields in order and field types) is recorded in
:data:`FINGERPRINTS`. ``tests/unit/test_layout.py`` fails while the structs
and the record disagree.

Redis holds the version in ``cs:layout``: the first worker writes it
(:func:`claim_layout`); every worker, scrape reader and command that reads
Redis checks it at start (:func:`check_layout`) and refuses another version
in one line that says what to do (``docs/operations.md``, *Upgrading the
Redis layout*).
"""

from __future__ import annotations

import hashlib
import types
import typing
from collections.abc import Iterable
from typing import Any

import msgspec
from redis import Redis

from aggregators import keys
from aggregators.facts import AccountFacts
from aggregators.families import FAMILIES

LAYOUT_VERSION = 1
"""The layout this code reads and writes."""
FINGERPRINTS: dict[int, str] = {
    1: "02eea7ccb6908362",
}
"""Layout version -> fingerprint of the state structs at that version (see :func:`fingerprint`)."""

UPGRADE = "see 'Upgrading the Redis layout' in docs/operations.md"


class LayoutMismatch(Exception):
    """Redis holds another layout version than this code's: one line for the operator."""


def state_structs() -> list[type[msgspec.Struct]]:
    """The structs stored in Redis: each family's entity state and facts, the account's
    mirrored facts, and every struct they hold."""
    roots: list[Any] = [AccountFacts]
    for name in sorted(FAMILIES):
        family = FAMILIES[name]
        if family.entity is not None:
            roots.append(family.entity.state_type)
        roots.append(family.facts.facts_type)
    return roots


def fingerprint(roots: Iterable[type[msgspec.Struct]] | None = None) -> str:
    """A digest of the stored structs: names, array-likeness, fields in order, field types."""
    seen: dict[str, str] = {}
    for root in state_structs() if roots is None else roots:
        _describe(root, seen)
    text = "\n".join(f"{name} {shape}" for name, shape in sorted(seen.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe(tp: Any, seen: dict[str, str]) -> str:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        name = tp.__name__
        if name not in seen:
            seen[name] = "..."  # recursion guard
            config = tp.__struct_config__
            fields = [
                f"{f.encode_name}:{_describe(f.type, seen)}" for f in msgspec.structs.fields(tp)
            ]
            seen[name] = f"array_like={config.array_like} ({', '.join(fields)})"
        return name
    origin = typing.get_origin(tp)
    if origin is not None:
        args = ", ".join(_describe(arg, seen) for arg in typing.get_args(tp))
        label = "Union" if origin in (typing.Union, types.UnionType) else _name(origin)
        return f"{label}[{args}]"
    return _name(tp)


def _name(tp: Any) -> str:
    return "None" if tp is type(None) else str(getattr(tp, "__name__", tp))


def _refusal(found: bytes | str) -> LayoutMismatch:
    text = found.decode() if isinstance(found, bytes) else str(found)
    return LayoutMismatch(
        f"Redis holds cspulse's layout version {text} ({keys.LAYOUT}) but this cspulse reads "
        f"and writes version {LAYOUT_VERSION}: run the cspulse release of layout {text} "
        f"against this Redis, or {UPGRADE}."
    )


def check_layout(redis: Redis) -> None:
    """Raise :class:`LayoutMismatch` when Redis holds another layout version (an empty
    Redis, or one no worker wrote yet, passes)."""
    found = redis.get(keys.LAYOUT)
    if found is not None and found not in (str(LAYOUT_VERSION), str(LAYOUT_VERSION).encode()):
        raise _refusal(found)


def claim_layout(redis: Redis) -> None:
    """Record this code's layout version unless one is recorded; then check it."""
    redis.set(keys.LAYOUT, LAYOUT_VERSION, nx=True)
    check_layout(redis)
