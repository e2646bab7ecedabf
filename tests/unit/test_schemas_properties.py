"""Property tests: parse_event never raises, whatever the bytes, and the published
JSON Schema files accept exactly the events parse_event accepts (apart from the
rules a schema cannot express: reporting currency, future time, topic)."""

import functools
import importlib.util
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import REASONS, Event, Rejected, parse_event, parse_events, validate
from schemas.generate import event_schema
from schemas.models import TYPE_TO_DATA
from tests.unit.test_schemas import FULL, MINIMAL, NOW, OK, envelope

PROPERTY_SETTINGS = settings(max_examples=400, deadline=None)

FIELDS = sorted({name for cls in TYPE_TO_DATA.values() for name in cls.__struct_fields__})
ENVELOPE_FIELDS = ["specversion", "id", "source", "type", "time", "data"]
TIMES = [  # strings on which msgspec and the schema's pattern agree
    "2026-11-23T07:00:00Z",
    "2026-11-23T09:00:00+02:00",
    "2026-11-23t06:00:00.5z",
    "2026-11-23T07:00:00",
    "2026-11-23",
    "2026-11-24T00:00:00Z",  # future
    "2026-11-22T23:59:60Z",  # a leap second
    "2026-11-22T15:59:60.5-08:00",  # the same, at another offset
]

# Integral floats (5.0) are left out: JSON Schema counts them as integers,
# msgspec (so cspulse) requires integer cents written without a fraction.
floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | floats | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
PLAUSIBLE: list[Any] = [
    *["acme", "", "x" * 129, "agent", "customer", "nps", "csat", "ces", "USD", "EUR", "web"],
    *[0, 1, 4, 5, 6, 7, 10, 11, -1, 2**63, 4.5, True, False, None, [], {}],
]
plausible = st.sampled_from(PLAUSIBLE)
values = plausible | json_values
envelope_values = values | st.sampled_from(TIMES + sorted(TYPE_TO_DATA) + ["1.0"])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of a random type with a few fields replaced or removed."""
    event_type = draw(st.sampled_from(sorted(TYPE_TO_DATA)))
    data = dict(FULL.get(event_type) or MINIMAL[event_type][0])
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=3)):
        data[name] = draw(values)
    for name in draw(st.sets(st.sampled_from(sorted(data)), max_size=1)):
        del data[name]
    event = envelope(event_type, data)
    for name in draw(st.sets(st.sampled_from(ENVELOPE_FIELDS), max_size=1)):
        event[name] = draw(envelope_values)
    return event


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """A valid message with one random byte-level edit."""
    start = draw(st.integers(0, len(OK)))
    end = draw(st.integers(start, min(len(OK), start + 8)))
    return OK[:start] + draw(st.binary(max_size=8)) + OK[end:]


def check(raw: bytes, topic: str | None = None, max_future: float = 300) -> Event | Rejected:
    """parse_event's result, after checking it is well-formed."""
    result = parse_event(raw, now=NOW, topic=topic, max_future_seconds=max_future)
    if isinstance(result, Rejected):
        assert result.reason in REASONS
        assert 0 < len(result.detail) <= 300
    else:
        assert isinstance(result, Event)
        assert isinstance(result.data, TYPE_TO_DATA[result.type])
    return result


@PROPERTY_SETTINGS
@given(st.binary(max_size=300))
def test_never_raises_on_bytes(raw: bytes) -> None:
    check(raw)


@PROPERTY_SETTINGS
@given(corrupted())
def test_never_raises_on_corrupted_messages(raw: bytes) -> None:
    check(raw)


@PROPERTY_SETTINGS
@given(json_values)
def test_never_raises_on_json_values(value: Any) -> None:
    check(msgspec.json.encode(value))


@PROPERTY_SETTINGS
@given(events(), st.sampled_from([None, "cs.tickets", "cs.billing", "cs.deadletter"]))
def test_never_raises_on_event_shaped_json(event: dict[str, Any], topic: str | None) -> None:
    check(msgspec.json.encode(event), topic)


def careful(raw: bytes, topic: str | None) -> Event | Rejected:
    """The verdict of the careful two-pass path alone (no one-pass shortcut)."""
    try:
        return validate._parse(raw, NOW, "USD", 300.0, topic)
    except validate._Invalid as exc:
        return Rejected(exc.reason, exc.detail[:300])


TOPICS = [None, "cs.tickets", "cs.surveys", "cs.logins", "cs.billing", "cs.deadletter"]


@settings(max_examples=1500, deadline=None)
@given(events(), st.sampled_from(TOPICS), st.sets(st.sampled_from(ENVELOPE_FIELDS), max_size=1))
def test_the_one_pass_decode_agrees_with_the_careful_path(
    event: dict[str, Any], topic: str | None, dropped: set[str]
) -> None:
    raw = msgspec.json.encode({k: v for k, v in event.items() if k not in dropped})
    verdict = careful(raw, topic)
    assert parse_event(raw, now=NOW, topic=topic) == verdict
    assert parse_events([raw, OK], now=NOW, topic=topic)[0] == verdict


@pytest.mark.parametrize("event_type", sorted(TYPE_TO_DATA))
@pytest.mark.parametrize("field", ENVELOPE_FIELDS)
def test_the_one_pass_decode_needs_every_envelope_field(event_type: str, field: str) -> None:
    event = envelope(event_type, dict(MINIMAL[event_type][0]))
    del event[field]
    raw = msgspec.json.encode(event)
    for topic in TOPICS:
        verdict = parse_event(raw, now=NOW, topic=topic)
        assert isinstance(verdict, Rejected)
        assert verdict == careful(raw, topic)


@PROPERTY_SETTINGS
@given(corrupted(), st.sampled_from(TOPICS))
def test_the_one_pass_decode_agrees_on_corrupted_messages(raw: bytes, topic: str | None) -> None:
    assert parse_event(raw, now=NOW, topic=topic) == careful(raw, topic)


@pytest.mark.parametrize(
    "raw",
    [b"[" * 200_000, b'{"a":' * 200_000, b'"' + b"x" * 20_000_000 + b'"', b"\x00" * 1000, b"-"],
    ids=["deep arrays", "deep objects", "20 MB string", "NUL bytes", "lone minus"],
)
def test_never_raises_on_pathological_input(raw: bytes) -> None:
    result = check(raw)
    assert isinstance(result, Rejected)
    assert result.reason in ("not_json", "not_object")


# --- the JSON Schema files agree with the validator ------------------------------


needs_jsonschema = pytest.mark.skipif(
    importlib.util.find_spec("jsonschema") is None,
    reason="needs the jsonschema package (test extra)",
)


@functools.cache
def validator(event_type: str) -> Any:
    import jsonschema

    schema = event_schema(event_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@needs_jsonschema
@pytest.mark.parametrize("event_type", sorted(TYPE_TO_DATA))
def test_valid_examples_match_their_json_schema(event_type: str) -> None:
    for data in (MINIMAL[event_type][0], FULL.get(event_type, {})):
        if data:
            validator(event_type).validate(envelope(event_type, data))


@needs_jsonschema
@PROPERTY_SETTINGS
@given(events())
def test_json_schema_accepts_what_parse_event_accepts(event: dict[str, Any]) -> None:
    result = check(msgspec.json.encode(event), max_future=float("inf"))
    event_type = event.get("type")
    if not isinstance(event_type, str) or event_type not in TYPE_TO_DATA:
        assert isinstance(result, Rejected)
        return
    schema_ok = validator(event_type).is_valid(event)
    parse_ok = isinstance(result, Event) or result.reason == "currency"  # checked last
    assert parse_ok == schema_ok, result


# --- bounded names: length and characters -------------------------------------

BOUNDS: dict[tuple[str, str], tuple[int, int]] = {
    ("ticket.opened", "account_id"): (1, 128),
    ("ticket.opened", "user_id"): (1, 128),
    ("ticket.replied", "agent_id"): (1, 128),
    ("survey.answered", "ticket_id"): (1, 128),
    ("session.heartbeat", "session_id"): (1, 128),
    ("subscription.renewed", "subscription_id"): (1, 128),
    ("invoice.failed", "invoice_id"): (1, 128),
    ("subscription.changed", "plan"): (0, 64),
    ("trial.converted", "plan"): (0, 64),
    ("cost.recorded", "category"): (0, 64),
    ("subscription.canceled", "reason"): (0, 256),
}
"""(type, field) -> inclusive character bounds, restated from events.md / docs."""

CONTROL = [*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0))]
NEAR_CONTROL = [" ", "~", "\xa0", "é", "\u2028", "\ufeff", "👍", ":", '"', "\\"]
odd_chars = st.sampled_from(CONTROL + NEAR_CONTROL) | st.characters(exclude_categories=["Cs"])
names = st.builds(
    lambda head, n, tail: head + "a" * n + tail,
    st.text(odd_chars, max_size=2),
    st.sampled_from([0, 1, 62, 63, 64, 65, 125, 126, 127, 128, 253, 254, 255, 256]),
    st.text(odd_chars, max_size=2),
)


def within_bounds(value: str, low: int, high: int) -> bool:
    """The rule, written out: length in code points, no C0, DEL or C1 character."""
    return low <= len(value) <= high and not any(
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value
    )


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(BOUNDS)), names)
def test_bounded_names_are_accepted_exactly_within_their_bounds(
    field: tuple[str, str], value: str
) -> None:
    event_type, name = field
    data = {**(FULL.get(event_type) or MINIMAL[event_type][0]), name: value}
    result = check(msgspec.json.encode(envelope(event_type, data)))
    if within_bounds(value, *BOUNDS[field]):
        assert isinstance(result, Event), result
        assert getattr(result.data, name) == value
    else:
        assert isinstance(result, Rejected)
        assert (result.reason, f"`$.data.{name}`" in result.detail) == ("bad_type", True)


@PROPERTY_SETTINGS
@given(names)
def test_event_id_is_accepted_exactly_within_its_bounds(value: str) -> None:
    result = check(
        msgspec.json.encode(envelope("ticket.reopened", MINIMAL["ticket.reopened"][0], id=value))
    )
    assert isinstance(result, Event) == within_bounds(value, 1, 128), result


@needs_jsonschema
@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(BOUNDS)), names)
def test_json_schema_bounds_names_like_parse_event(field: tuple[str, str], value: str) -> None:
    event_type, name = field
    event = envelope(event_type, {**(FULL.get(event_type) or MINIMAL[event_type][0]), name: value})
    assert validator(event_type).is_valid(event) == within_bounds(value, *BOUNDS[field])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a" * 128, True), ("a" * 129, False), ("", False), ("a\x7f", False), ("a\xa0", True)],
)
def test_within_bounds_restates_the_rule(value: str, expected: bool) -> None:
    assert within_bounds(value, 1, 128) is expected
