"""parse_events decodes the plain messages of a batch together, as one JSON array:
its verdicts must be parse_event's, message by message, whatever the batch holds,
including messages made to shift their neighbours when the batch is joined."""

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Event, Rejected, parse_event, parse_events, validate
from schemas.models import TOPIC_TYPES, TYPE_TO_DATA
from tests.unit.test_schemas import FULL, MINIMAL, NOW, OK, envelope
from tests.unit.test_schemas_properties import TIMES, TOPICS, corrupted, events

RUN = validate._MIN_RUN
OPEN = OK[:-1]
"""A valid message with its closing brace cut: the envelope object left open."""
TWO = OK + b"," + OK
"""Two messages in one: one value too many when joined with the others."""

SMUGGLERS: dict[str, list[bytes]] = {
    # Each: messages that, joined with a bare comma, decode to exactly one valid
    # envelope per message, none of them where it belongs; each is stopped by
    # another of the rules of _decode_together.
    "an array left open": [OPEN + b',"x":[{}', b"{}]}", TWO],
    "a string left open": [OPEN + b',"x":"', b'{"}', TWO],
    "an object left open": [OPEN, b'"x":1}', TWO],
    "an object left open, then a space": [OPEN, b' "x":1}', TWO],
}
"""Batches a naive join would misread; parse_events must not be fooled by any."""


def one_by_one(raws: list[bytes], topic: str | None = None, **kwargs: Any) -> list[Any]:
    return [parse_event(raw, now=NOW, topic=topic, **kwargs) for raw in raws]


def minimal(event_type: str, **overrides: Any) -> bytes:
    return msgspec.json.encode(envelope(event_type, MINIMAL[event_type][0], **overrides))


PLAIN = [minimal(name, id=f"e-{i}") for i, name in enumerate(sorted(TYPE_TO_DATA))]
"""One valid plain message of each event type."""


@pytest.mark.parametrize("name", sorted(SMUGGLERS))
def test_a_naive_join_would_be_fooled(name: str) -> None:
    batch = SMUGGLERS[name]
    naive = validate._batch_decoder(None).decode(b"[" + b",".join(batch) + b"]")
    assert len(naive) == len(batch)
    assert all(isinstance(one_by_one([raw])[0], Rejected) for raw in batch)


@pytest.mark.parametrize("name", sorted(SMUGGLERS))
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_smuggled_values_shift_nothing(name: str, where: str) -> None:
    padding = PLAIN[: RUN + 1]
    at = {"first": 0, "middle": len(padding) // 2, "last": len(padding)}[where]
    batch = padding[:at] + SMUGGLERS[name] + padding[at:]
    assert validate._decode_together(SMUGGLERS[name] * RUN, None) is None
    verdicts = parse_events(batch, now=NOW)
    assert verdicts == one_by_one(batch)
    assert [isinstance(v, Event) for v in verdicts] == [raw in padding for raw in batch]


@pytest.mark.parametrize(
    "odd",
    [b"", b" ", b" " + OK, b"\n" + OK, OK + b"\n", OK.replace(b",", b",\n"), TWO, b"{}", b"1"],
    ids=[
        "empty",
        "space",
        "leading space",
        "leading newline",
        "newline",
        "lines",
        "two",
        "{}",
        "1",
    ],
)
def test_a_message_that_is_not_one_plain_object_goes_alone(odd: bytes) -> None:
    batch = [*PLAIN[:RUN], odd, *PLAIN[RUN : 2 * RUN]]
    assert validate._decode_together(batch, None) is None
    assert parse_events(batch, now=NOW) == one_by_one(batch)


@pytest.mark.parametrize("odd", [b"", b" ", b" " + OK, b"\n" + OK, OK + b"\n", TWO, b"1"])
@pytest.mark.parametrize("where", ["first", "last"])
def test_an_odd_message_at_either_end_gets_its_own_verdict(odd: bytes, where: str) -> None:
    batch = [odd, *PLAIN[:RUN]] if where == "first" else [*PLAIN[:RUN], odd]
    assert parse_events(batch, now=NOW) == one_by_one(batch)


def test_whitespace_after_a_message_is_harmless() -> None:
    batch = [*PLAIN[:RUN], OK + b"  ", *PLAIN[RUN : 2 * RUN]]
    assert validate._decode_together(batch, None) is not None
    assert parse_events(batch, now=NOW) == one_by_one(batch)


def test_plain_batches_are_decoded_together() -> None:
    decoded = validate._decode_together(PLAIN, None)
    assert decoded is not None
    assert [validate._TYPE_OF[type(env)] for env in decoded] == sorted(TYPE_TO_DATA)
    for suffix, names in TOPIC_TYPES.items():
        batch = [
            raw for name, raw in zip(sorted(TYPE_TO_DATA), PLAIN, strict=True) if name in names
        ] * RUN
        assert validate._decode_together(batch, "cs." + suffix) is not None
        assert parse_events(iter(batch), now=NOW, topic="cs." + suffix) == one_by_one(batch)


LATE_CHECKS = {
    "future_time": minimal("ticket.opened", time="2026-11-23T07:05:01Z"),
    "bad_time": minimal("ticket.opened", time="2026-11-23T07:00:00"),
    "bad_specversion": minimal("ticket.opened", specversion="0.3"),
    "currency": minimal("invoice.paid").replace(b"USD", b"EUR"),
    "missing_field": msgspec.json.encode(
        envelope("ticket.replied", {**MINIMAL["ticket.replied"][0], "author": "agent"})
    ),
    "score_range": msgspec.json.encode(
        envelope("survey.answered", {**MINIMAL["survey.answered"][0], "score": 6})
    ),
}
"""Plain messages that decode together but fail a check made after the decode."""


@pytest.mark.parametrize("reason", sorted(LATE_CHECKS))
def test_a_check_after_the_decode_rejects_its_message_only(reason: str) -> None:
    batch = [*PLAIN[:RUN], LATE_CHECKS[reason], *PLAIN[RUN:]]
    assert validate._decode_together(batch, None) is not None
    verdicts = parse_events(batch, now=NOW)
    assert verdicts == one_by_one(batch)
    assert [v.reason for v in verdicts if isinstance(v, Rejected)] == [reason]


def test_a_bracket_or_a_non_ascii_character_sends_its_half_message_by_message() -> None:
    bracket = minimal("ticket.opened", id="[1]")
    accented = msgspec.json.encode(envelope("survey.answered", FULL["survey.answered"]))
    batch = [*PLAIN, bracket, *PLAIN, accented, *PLAIN]
    verdicts = parse_events(batch, now=NOW)
    assert verdicts == one_by_one(batch)
    assert all(isinstance(v, Event) for v in verdicts)


def test_an_empty_batch_has_no_verdicts() -> None:
    assert parse_events([], now=NOW) == []


GOOD_TIMES = ["2026-11-23T07:00:00Z", "2026-11-23T09:00:00+02:00", "2026-11-23t06:00:00.5z"]
pieces = st.sampled_from([piece for batch in SMUGGLERS.values() for piece in batch])
odd = st.sampled_from(
    [b"", b" ", OK + b" ", b"[]", b"{}", b"1,2", b"{,", OK.replace(b"a", b"\\u0061")]
)
anything = corrupted() | events().map(msgspec.json.encode) | pieces | odd


@st.composite
def batches(draw: st.DrawFn) -> tuple[str | None, list[bytes]]:
    """A topic and a batch of mostly valid messages of its types, a few of them
    odd: invalid, valid but not plain, future, of another topic, or smugglers."""
    topic = draw(st.sampled_from(TOPICS))
    suffix = next((s for s in TOPIC_TYPES if topic is not None and topic.endswith(s)), None)
    names = sorted(TOPIC_TYPES[suffix] if suffix else TYPE_TO_DATA)
    size = draw(st.integers(0, 4 * RUN))
    batch = [
        minimal(draw(st.sampled_from(names)), time=draw(st.sampled_from(GOOD_TIMES)), id=f"e-{i}")
        for i in range(size)
    ]
    for _ in range(draw(st.integers(0, 3))):
        message = draw(anything | st.sampled_from(TIMES).map(lambda t: minimal(names[0], time=t)))
        batch.insert(draw(st.integers(0, len(batch))), message)
    return topic, batch


@settings(max_examples=600, deadline=None)
@given(batches(), st.sampled_from([0.0, 300.0, 86_400.0]))
def test_a_batch_gets_the_verdicts_of_its_messages_one_by_one(
    topic_batch: tuple[str | None, list[bytes]], max_future: float
) -> None:
    topic, batch = topic_batch
    verdicts = parse_events(batch, now=NOW, topic=topic, max_future_seconds=max_future)
    assert verdicts == one_by_one(batch, topic, max_future_seconds=max_future)
