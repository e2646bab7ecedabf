"""The stored layout is versioned: a change to a stored struct must bump it.

Entity states are array-like msgspec structs, decoded by position: swapping
two fields of one type would read every stored state back wrong, silently.
The fingerprint of the stored structs is recorded per layout version, so
such a change fails here until :data:`LAYOUT_VERSION` is bumped and the new
fingerprint recorded (with an upgrade path in docs/operations.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest

from aggregators.families import FAMILIES
from aggregators.families.tickets import TicketState
from aggregators.layout import FINGERPRINTS, LAYOUT_VERSION, fingerprint


def test_the_stored_structs_match_the_recorded_layout() -> None:
    assert fingerprint() == FINGERPRINTS[LAYOUT_VERSION], (
        "a struct kept in Redis changed (aggregators/layout.py): bump LAYOUT_VERSION, record "
        f"{fingerprint()!r} for it in FINGERPRINTS and describe the upgrade in docs/operations.md"
    )


def swapped(struct: Any, a: str, b: str) -> Any:
    """A struct of the same name with fields ``a`` and ``b`` in each other's place."""
    fields = list(msgspec.structs.fields(struct))
    i, j = (next(k for k, f in enumerate(fields) if f.name == n) for n in (a, b))
    fields[i], fields[j] = fields[j], fields[i]
    spec: list[Any] = []
    for f in fields:
        if f.default is not msgspec.NODEFAULT:
            spec.append((f.name, f.type, f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            spec.append((f.name, f.type, msgspec.field(default_factory=f.default_factory)))
        else:
            spec.append((f.name, f.type))
    return msgspec.defstruct(struct.__name__, spec, array_like=True)


def test_reordering_two_fields_of_a_state_struct_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    reordered = swapped(TicketState, "resolved_first", "opened_first")
    # what the version guards against: the old bytes decode, wrongly, without an error
    stored = msgspec.json.encode(TicketState("team", opened_first=1.0, resolved_first=2.0))
    misread = msgspec.json.decode(stored, type=reordered)
    assert misread.opened_first == 2.0
    assert fingerprint([reordered]) != fingerprint([TicketState])
    tickets = FAMILIES["tickets"]
    entity = tickets.entity
    assert entity is not None

    class Reordered:
        state_type = reordered

        def __getattr__(self, name: str) -> Any:
            return getattr(entity, name)

    changed: Any = Reordered()
    monkeypatch.setitem(FAMILIES, "tickets", dataclasses.replace(tickets, entity=changed))
    assert fingerprint() != FINGERPRINTS[LAYOUT_VERSION]


@pytest.mark.parametrize(
    "change",
    [
        lambda s: msgspec.defstruct("TicketState", [("segment", str), ("opened", float)]),
        lambda s: msgspec.defstruct(
            "TicketState", [(f.name, f.type, None) for f in msgspec.structs.fields(s)]
        ),  # no longer array-like
    ],
)
def test_a_renamed_field_or_another_encoding_is_caught(change: Any) -> None:
    assert fingerprint([change(TicketState)]) != fingerprint([TicketState])
