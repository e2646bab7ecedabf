"""Turn one Kafka message value into a typed `Event` or a `Rejected` reason.

Hot path: one msgspec pass straight from bytes into a typed envelope (the
envelope Structs of the topic's event types form a union tagged by ``type``,
so the payload is decoded into its Struct in the same pass), then a few cheap
checks. No dicts, no exceptions on valid input. A message the hot path
does not accept as it is (anything invalid, anything escaped or non-ASCII)
goes through the careful path below, which decides what is wrong with it, so
both give the same answer for every input. `parse_events` decodes the plain
messages of a batch together, in one msgspec call over them joined as a JSON
array, under rules that make each element exactly its message (see
`_decode_together`), so a batch costs one decode instead of one per message.
Every failure becomes a
`Rejected` with a short reason from `REASONS` (the dead-letter header and the
`reason` label of `cs_events_invalid_total`) and a human detail naming the
JSON path.

Checks run in this order and the first failure wins: JSON syntax, envelope
shape (msgspec reports the first bad field in document order), control
characters in the event id, specversion, type, topic, time offset, future
time, payload shape, control characters in the payload's names, payload rules
(agent_id, survey scale, currency).
"""

import functools
import re
import typing
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import GenericAlias, MappingProxyType
from typing import Any, Final, NamedTuple, Union, cast

import msgspec

from schemas.envelope import SPECVERSION, Envelope, EnvelopeTimeText
from schemas.models import (
    CONTROL_CHARACTERS,
    FIXED_SCALES,
    PRINTABLE,
    TOPIC_TYPES,
    TYPE_TO_DATA,
    AnyData,
    EventId,
    PricedData,
    Source,
    SurveyAnswered,
    TicketReplied,
    score_bounds,
)

REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "not_json": "Not well-formed UTF-8 JSON, or nested deeper than the parser allows.",
        "not_object": "Well-formed JSON whose top level is not an object.",
        "missing_field": (
            "A required field is absent; includes data.agent_id when data.author is agent."
        ),
        "bad_type": (
            "A field has the wrong JSON type (null for a required field included) or breaks "
            "a constraint: enum value, string length, a control character in an id, plan, "
            "category or reason, integer range, data not an object, "
            "scale_max not in {5, 7, 10} or not the fixed maximum of nps (10) / ces (7)."
        ),
        "bad_specversion": 'specversion is not the string "1.0".',
        "unknown_type": "type is not one of the event types of the contract.",
        "wrong_topic": "type belongs to another topic than the one the message was read from.",
        "bad_time": "time is not an RFC 3339 date-time with an offset (Z or +hh:mm).",
        "future_time": "time is more than max_future_seconds (default 300 s) after now.",
        "score_range": "A survey score is off its scale: nps 0-10, ces 1-7, csat 1..scale_max.",
        "currency": "currency is not the reporting currency (exact, case-sensitive match).",
    }
)
"""Every reason `parse_event` can return -> its meaning (cited by the docs).
`too_late` is not here: lateness depends on aggregator state, the worker decides it."""

_MAX_DETAIL: Final = 300
"""Details can echo producer data (e.g. an enum value); clip them to keep
dead-letter headers and logs small."""


class Event(msgspec.Struct, frozen=True, gc=False):
    """A valid event. `time` is the event time in Unix seconds."""

    id: str
    source: str
    type: str
    time: float
    account_id: str
    data: AnyData


class Rejected(msgspec.Struct, frozen=True, gc=False):
    """An invalid event: `reason` is a key of REASONS, `detail` says what and where."""

    reason: str
    detail: str


class _Invalid(Exception):
    """Internal: aborts parsing with a reason; never escapes parse_event."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


_ENVELOPE: Final = msgspec.json.Decoder(Envelope)
_ENVELOPE_TIME_TEXT: Final = msgspec.json.Decoder(EnvelopeTimeText)
_LEAP_SECOND: Final = re.compile(
    r"^(.{10}[Tt][0-9]{2}:[0-9]{2}):60((\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))$"
)
"""A time whose seconds are 60, split around them."""
_SYNTAX: Final = msgspec.json.Decoder(msgspec.Raw)
_DATA: Final[Mapping[str, msgspec.json.Decoder[AnyData]]] = {
    name: cast("msgspec.json.Decoder[AnyData]", msgspec.json.Decoder(cls))
    for name, cls in TYPE_TO_DATA.items()
}
_CONTROL: Final = re.compile(CONTROL_CHARACTERS)
_FIELD_REASONS: Final = {
    "$.specversion": "bad_specversion",
    "$.type": "unknown_type",
    "$.time": "bad_time",
}
"""Envelope fields with their own reason, whatever is wrong with their value."""
_MISSING: Final = "Object missing required field `"


def parse_event(
    raw: bytes,
    *,
    now: float,
    reporting_currency: str = "USD",
    max_future_seconds: float = 300.0,
    topic: str | None = None,
) -> Event | Rejected:
    """Validate one message value against the event contract; never raises.

    `now` is the wall clock (Unix seconds) for the future-time check. `topic`,
    when given, must end with the suffix of the type's topic ("cs.tickets" ends
    with "tickets"); a topic ending with no known suffix is not checked.
    """
    event = _parse_plain(raw, now, reporting_currency, max_future_seconds, _topic_decoder(topic))
    if event is not None:
        return event
    return _parse_careful(raw, _Limits(now, reporting_currency, max_future_seconds, topic))


def parse_events(
    raws: Iterable[bytes],
    *,
    now: float,
    reporting_currency: str = "USD",
    max_future_seconds: float = 300.0,
    topic: str | None = None,
) -> list[Event | Rejected]:
    """:func:`parse_event` of each message of one topic's batch, in order.

    The same verdicts, with the per-message overhead paid once per batch: the
    plain messages of the batch are decoded in one msgspec call (see
    :func:`_decode_together`); a run that cannot be is halved until it can,
    or is short enough to take message by message."""
    messages = raws if isinstance(raws, list) else list(raws)
    out: list[Event | Rejected] = []
    _parse_run(messages, _Limits(now, reporting_currency, max_future_seconds, topic), out)
    return out


class _Limits(NamedTuple):
    """What a verdict depends on besides the message."""

    now: float
    currency: str
    max_future: float
    topic: str | None


_MIN_RUN: Final = 8
"""Below this many messages a run is parsed message by message, not halved again."""


def _parse_run(raws: list[bytes], limits: _Limits, out: list[Event | Rejected]) -> None:
    """Append the verdicts of ``raws``: from one decode of them all if it succeeds."""
    envelopes = _decode_together(raws, limits.topic) if len(raws) >= _MIN_RUN else None
    if envelopes is not None:
        _append_events(raws, envelopes, limits, out)
    elif len(raws) >= _MIN_RUN:
        half = len(raws) // 2
        _parse_run(raws[:half], limits, out)
        _parse_run(raws[half:], limits, out)
    else:
        decoder = _topic_decoder(limits.topic)
        for raw in raws:
            event = _parse_plain(raw, limits.now, limits.currency, limits.max_future, decoder)
            out.append(event if event is not None else _parse_careful(raw, limits))


def _append_events(
    raws: list[bytes], envelopes: list[Any], limits: _Limits, out: list[Event | Rejected]
) -> None:
    """The event :func:`_accepted` makes of each envelope, or else the careful verdict
    of its message. Its checks inlined, as this loop runs once per message (about
    5 % of parse_events); tests/unit/test_schemas_batch.py holds the two equal."""
    append = out.append
    currency = limits.currency
    latest = limits.now + limits.max_future
    for raw, env in zip(raws, envelopes, strict=True):
        envelope_type = type(env)
        if envelope_type is not _Untyped and env.specversion == SPECVERSION:
            time = env.time
            data = env.data
            if time.tzinfo is not None:
                try:
                    seconds = time.timestamp()
                    if type(data) in _CHECKED:
                        data = _check_data(data, currency)
                except (OverflowError, ValueError, OSError, _Invalid):
                    pass
                else:
                    if not seconds > latest:  # as in _accepted, whatever `now` is
                        event_type = _TYPE_OF[envelope_type]
                        append(
                            Event(env.id, env.source, event_type, seconds, data.account_id, data)
                        )
                        continue
        append(_parse_careful(raw, limits))


_SEPARATOR: Final = b",\n"
"""Between the messages of a batch decoded together. A raw newline cannot stand in
a JSON string, so no message can leave a string open over a separator."""


def _decode_together(raws: list[bytes], topic: str | None) -> list[Any] | None:
    """The typed envelopes of ``raws``, one per message, from ONE decode of them as a
    JSON array; None when that cannot be trusted to equal decoding each one alone.

    Besides being plain (see :func:`_parse_plain`), the messages must hold no
    newline and no ``[``, and each after the first must start with ``{``. Then no
    separator can fall inside a message's value: not in a string (its newline),
    not in an array (there is none but the outer one), not in an object (after a
    comma an object wants a key, ``"``, and the next message starts with ``{``).
    So every separator splits the outer array, and when it has exactly one
    element per message, no message holds a second top-level value: element i
    is message i, and decodes as it would alone."""
    separators = len(raws) - 1
    # the others start with {: their first bytes (one-byte bytes are shared objects),
    # cheaper than counting "\n{" in the buffer
    if b"".join([raw[:1] for raw in raws[1:]]) != b"{" * separators:
        return None
    # one join, brackets included: each copy of a batch-sized buffer costs more than
    # the checks below
    ends = [b"[" + raws[0], *raws[1:-1], raws[-1] + b"]"] if separators else [b"[", raws[0], b"]"]
    buffer = _SEPARATOR.join(ends) if separators else b"".join(ends)
    if (
        not buffer.isascii()
        or buffer.find(b"\\") >= 0
        or buffer.find(b"\x7f") >= 0
        or buffer.find(b"[", 1) >= 0
        or buffer.count(b"\n") != separators  # no message holds a newline
    ):
        return None
    try:
        envelopes: list[Any] = _batch_decoder(topic).decode(buffer)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    return envelopes if len(envelopes) == len(raws) else None


def _parse_careful(raw: bytes, limits: _Limits) -> Event | Rejected:
    try:
        return _parse(raw, limits.now, limits.currency, limits.max_future, limits.topic)
    except _Invalid as exc:
        return Rejected(exc.reason, exc.detail[:_MAX_DETAIL])


def _typed_envelope(name: str, data: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """The envelope of one event type, its payload typed, tagged by ``type``."""
    fields = [
        ("specversion", str),
        ("id", EventId),
        ("source", Source),
        ("time", datetime),
        ("data", data),
    ]
    label = "Envelope_" + name.replace(".", "_")
    return msgspec.defstruct(label, fields, tag_field="type", tag=name, frozen=True, gc=False)


_TYPED: Final = {name: _typed_envelope(name, cls) for name, cls in TYPE_TO_DATA.items()}


class _Untyped(msgspec.Struct, tag_field="type", tag="", frozen=True, gc=False):
    """A union member no valid event decodes to. A union needs two members to be
    tagged: a lone tagged Struct is decoded whether ``type`` is there or not."""


_TYPE_OF: Final = {envelope: name for name, envelope in _TYPED.items()}


@functools.lru_cache(maxsize=64)
def _topic_union(topic: str | None) -> Any:
    """The union of the typed envelopes of the topic's event types."""
    names = (topic is not None and _topic_types(topic)) or TYPE_TO_DATA.keys()
    envelopes = (*(_TYPED[name] for name in sorted(names)), _Untyped)
    return Union[envelopes]  # noqa: UP007


@functools.lru_cache(maxsize=64)
def _topic_decoder(topic: str | None) -> msgspec.json.Decoder[Any]:
    """One decoder per topic: one message, any of the topic's typed envelopes."""
    return msgspec.json.Decoder(_topic_union(topic))


@functools.lru_cache(maxsize=64)
def _batch_decoder(topic: str | None) -> msgspec.json.Decoder[list[Any]]:
    """One decoder per topic: an array of the topic's typed envelopes."""
    return msgspec.json.Decoder(GenericAlias(list, _topic_union(topic)))


def _parse_plain(
    raw: bytes, now: float, currency: str, max_future: float, decoder: msgspec.json.Decoder[Any]
) -> Event | None:
    """The event, in one decode, when ``raw`` is a plain valid message; else None (then
    :func:`_parse` decides). Plain: ASCII with no escapes, so no string can hold a
    control character or bad UTF-8, and every check of :func:`_parse` passes."""
    if not raw.isascii() or raw.find(b"\\") >= 0 or raw.find(b"\x7f") >= 0:
        return None
    try:
        env: Any = decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    return _accepted(env, now, currency, max_future)


def _accepted(env: Any, now: float, currency: str, max_future: float) -> Event | None:
    """The event of a decoded typed envelope when it passes every check; else None."""
    if type(env) is _Untyped:
        return None
    time = env.time
    if env.specversion != SPECVERSION or time.tzinfo is None:
        return None
    data = env.data
    try:
        seconds = time.timestamp()
        if type(data) in _CHECKED:
            data = _check_data(data, currency)
    except (OverflowError, ValueError, OSError, _Invalid):
        return None
    if seconds > now + max_future:
        return None
    return Event(env.id, env.source, _TYPE_OF[type(env)], seconds, data.account_id, data)


def _parse(raw: bytes, now: float, currency: str, max_future: float, topic: str | None) -> Event:
    env = _decode_envelope(raw)
    suspect = _may_hold_control_characters(raw)
    if suspect:
        _check_printable("$", env, ("id",))
    if env.specversion != SPECVERSION:
        raise _Invalid(
            "bad_specversion",
            f'specversion must be "1.0", not {env.specversion!r}, at `$.specversion`',
        )
    decoder = _DATA.get(env.type)
    if decoder is None:
        raise _Invalid("unknown_type", f"unknown event type {env.type!r} at `$.type`")
    if topic is not None:
        _check_topic(env.type, topic)
    time = _event_time(env.time, now, max_future)
    data = _decode_data(decoder, env.data)
    if suspect:
        _check_printable("$.data", data, _PRINTABLE_FIELDS[env.type])
    data = _check_data(data, currency)
    return Event(env.id, env.source, env.type, time, data.account_id, data)


def _decode_envelope(raw: bytes) -> Envelope:
    try:
        if not raw.isascii():
            raw.decode()  # msgspec skips unknown fields without checking their UTF-8
        return _ENVELOPE.decode(raw)
    except msgspec.ValidationError as exc:
        syntax_error = _syntax_error(raw)
        if syntax_error is not None:
            raise _Invalid("not_json", syntax_error) from None
        if str(exc).endswith("at `$.time`"):
            return _with_leap_second(raw, exc)
        raise _from_validation_error(exc, "$") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _Invalid("not_json", str(exc)) from None
    except RecursionError:
        raise _Invalid("not_json", "JSON nested too deeply to parse") from None


def _with_leap_second(raw: bytes, time_error: msgspec.ValidationError) -> Envelope:
    """The envelope of a message whose time msgspec refused, if that time is a leap
    second; else the first error. A leap second is the last second of a UTC day
    (RFC 3339 §5.7); Unix time has none, so it counts as the next day's 00:00:00
    (`23:59:60.5Z` as `00:00:00.5Z`), as POSIX clocks do."""
    try:
        env = _ENVELOPE_TIME_TEXT.decode(raw)
    except msgspec.ValidationError as exc:  # another field comes after time
        raise _from_validation_error(exc, "$") from None
    leap = _LEAP_SECOND.match(env.time)
    if leap is None:
        raise _from_validation_error(time_error, "$")
    try:
        before = msgspec.convert(f"{leap[1]}:59{leap[2]}", datetime)
    except msgspec.ValidationError:
        raise _from_validation_error(time_error, "$") from None
    if before.tzinfo is None or before.astimezone(UTC).strftime("%H:%M:%S") != "23:59:59":
        raise _Invalid(
            "bad_time", f"a leap second must be 23:59:60 UTC, not {env.time!r} at `$.time`"
        )
    return Envelope(
        env.specversion, env.id, env.source, env.type, before + timedelta(seconds=1), env.data
    )


def _may_hold_control_characters(raw: bytes) -> bool:
    """False when no string in `raw` can hold a control character: JSON spells
    C0 ones only as escapes (a backslash), DEL is byte 0x7f and the C1 ones are
    UTF-8 0xc2 0x80-0x9f. Nearly every event takes this one cheap scan only."""
    if raw.find(b"\\") >= 0 or raw.find(b"\x7f") >= 0:  # find: faster than `in` here
        return True
    return not raw.isascii() and raw.find(b"\xc2") >= 0


def _check_printable(base: str, obj: Any, fields: tuple[str, ...]) -> None:
    for name in fields:
        value = getattr(obj, name)
        found = _CONTROL.search(value) if value is not None else None
        if found is not None:
            raise _Invalid(
                "bad_type",
                f"control character U+{ord(found.group()):04X} at `{base}.{name}`: ids, plans, "
                "categories and reasons must be printable",
            )


def _printable_fields(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """Fields of `cls` whose type (or a member of its union) carries the PRINTABLE rule."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return tuple(name for name in cls.__struct_fields__ if _carries_printable(hints[name]))


def _carries_printable(hint: Any) -> bool:
    if isinstance(hint, msgspec.Meta):
        return hint.extra_json_schema == PRINTABLE
    return any(_carries_printable(arg) for arg in typing.get_args(hint))


_PRINTABLE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    name: _printable_fields(cls) for name, cls in TYPE_TO_DATA.items()
}
"""Event type -> the payload fields that must hold no control character."""


def _syntax_error(raw: bytes) -> str | None:
    """Why `raw` is not JSON, or None. msgspec stops at the first type error, so
    a ValidationError alone does not prove the rest of the document is JSON."""
    try:
        _SYNTAX.decode(raw)
    except msgspec.DecodeError as exc:
        return str(exc)
    except RecursionError:
        return "JSON nested too deeply to parse"
    return None


def _decode_data(decoder: msgspec.json.Decoder[AnyData], data: msgspec.Raw) -> AnyData:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _from_validation_error(exc, "$.data") from None
    except (msgspec.DecodeError, RecursionError) as exc:  # defensive: envelope pass parsed it
        raise _Invalid("not_json", f"{exc} at `$.data`") from None


def _from_validation_error(exc: msgspec.ValidationError, base: str) -> _Invalid:
    """Map a msgspec message ("<what> - at `$.x`") to a reason and a full-path detail."""
    message, sep, where = str(exc).rpartition(" - at `")
    if not sep:
        message, where = where, "$`"
    path = base + where[1:-1]
    if message.startswith(_MISSING):
        return _Invalid(
            "missing_field", f"required field `{path}.{message[len(_MISSING) : -1]}` is missing"
        )
    if path == "$":
        return _Invalid("not_object", f"{message} at `$`: an event is a JSON object")
    return _Invalid(_FIELD_REASONS.get(path, "bad_type"), f"{message} at `{path}`")


@functools.lru_cache(maxsize=64)
def _topic_types(topic: str) -> frozenset[str] | None:
    for suffix, types in TOPIC_TYPES.items():
        if topic.endswith(suffix):
            return types
    return None


def _check_topic(event_type: str, topic: str) -> None:
    allowed = _topic_types(topic)
    if allowed is not None and event_type not in allowed:
        raise _Invalid("wrong_topic", f"{event_type!r} does not belong on topic {topic!r}")


def _event_time(time: datetime, now: float, max_future: float) -> float:
    if time.tzinfo is None:
        raise _Invalid("bad_time", "time has no UTC offset (add Z or +hh:mm) at `$.time`")
    try:
        seconds = time.timestamp()
    except (OverflowError, ValueError, OSError) as exc:  # defensive: extreme years
        raise _Invalid("bad_time", f"time out of range ({exc}) at `$.time`") from None
    if seconds > now + max_future:
        ahead = seconds - now
        raise _Invalid(
            "future_time", f"time is {ahead:.0f} s ahead of now (max {max_future:g} s) at `$.time`"
        )
    return seconds


_CHECKED: Final = frozenset(
    cls
    for cls in TYPE_TO_DATA.values()
    if issubclass(cls, PricedData | TicketReplied | SurveyAnswered)
)
"""Payload types :func:`_check_data` has a rule for (the others pass as they are)."""


def _check_data(data: AnyData, currency: str) -> AnyData:
    """Rules a Struct type cannot express."""
    if isinstance(data, PricedData):
        if data.currency != currency:
            raise _Invalid(
                "currency", f"currency {data.currency!r} is not {currency!r} at `$.data.currency`"
            )
    elif isinstance(data, TicketReplied):
        if data.author == "agent" and data.agent_id is None:
            raise _Invalid("missing_field", "`$.data.agent_id` is required when author is agent")
    elif isinstance(data, SurveyAnswered):
        return _check_survey(data)
    return data


def _check_survey(data: SurveyAnswered) -> SurveyAnswered:
    """Check the score against its scale; fill scale_max with the effective maximum."""
    fixed = FIXED_SCALES.get(data.kind)
    if fixed is not None and data.scale_max not in (None, fixed[1]):
        raise _Invalid(
            "bad_type",
            f"scale_max {data.scale_max} contradicts the fixed {data.kind} scale "
            f"{fixed[0]}-{fixed[1]} at `$.data.scale_max`",
        )
    low, high = score_bounds(data.kind, data.scale_max)
    if not low <= data.score <= high:
        raise _Invalid(
            "score_range",
            f"score {data.score:g} is off the {data.kind} scale {low}-{high} at `$.data.score`",
        )
    if data.scale_max == high:
        return data
    return msgspec.structs.replace(data, scale_max=high)
