"""The CloudEvents 1.0 structured-mode envelope every event arrives in.

`data` stays `msgspec.Raw` (a zero-copy slice of the input) until `type` is
known, so the payload is decoded exactly once, straight into its own Struct.
"""

from datetime import datetime
from typing import Final

import msgspec

from schemas.models import EventId, Source

SPECVERSION: Final = "1.0"

TIME_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
"""RFC 3339 date-time with a mandatory offset, for the published JSON Schema
(the `date-time` format alone is not asserted by most validators)."""


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """Wire envelope with the payload still undecoded.

    `time` is decoded by msgspec's RFC 3339 parser; a missing offset yields a
    naive datetime, which the validator rejects (event time must be absolute).
    """

    specversion: str
    id: EventId
    source: Source
    type: str
    time: datetime
    data: msgspec.Raw


class EnvelopeTimeText(Envelope, frozen=True, gc=False):
    """The envelope with `time` left as text: the second pass for a time msgspec's
    parser refused, to accept a leap second (`23:59:60Z`), which is valid RFC 3339
    but has no `datetime`."""

    time: str  # type: ignore[assignment]
