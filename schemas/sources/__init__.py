"""Vendor payloads -> contract events: one pure mapping per source, no I/O.

Each mapping returns the contract events a vendor payload stands for, an
:class:`Ignored` (a type cspulse does not map: accepted and counted), or an
:class:`Unmappable` (a payload of a mapped type that cannot be read: the HTTP
ingest dead-letters it with the reason). Contract ids are derived from the
vendor's own event id, so a redelivery carries the same ids and the worker's
dedup counts it once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from schemas.envelope import SPECVERSION


class Draft(msgspec.Struct, frozen=True):
    """A contract event before validation: what a mapping produces."""

    id: str
    source: str
    type: str
    time: float
    account_id: str
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The CloudEvents structured-mode object of the contract."""
        return {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": rfc3339(self.time),
            "data": {"account_id": self.account_id, **self.data},
        }

    def encode(self) -> bytes:
        return orjson.dumps(self.envelope())


class Ignored(msgspec.Struct, frozen=True):
    """A vendor payload cspulse does not map (accepted, counted by ``kind``)."""

    kind: str
    """The vendor's type: a bounded set, fit for a metric label."""
    detail: str = ""


class Unmappable(msgspec.Struct, frozen=True):
    """A payload of a mapped type that cannot become contract events."""

    reason: str
    detail: str


Mapped = list[Draft] | Ignored | Unmappable


def rfc3339(unix: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds (the contract's ``time``)."""
    moment = datetime.fromtimestamp(unix, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unix_time(text: str) -> float:
    """An ISO 8601 / RFC 3339 time with an offset as Unix seconds (ValueError otherwise)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without an offset: {text!r}")
    return moment.timestamp()


def decode_error(exc: msgspec.DecodeError) -> Unmappable:
    """A payload msgspec could not read into the vendor's Struct: one reason for all."""
    return Unmappable("bad_payload", str(exc)[:300])
