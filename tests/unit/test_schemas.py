"""Example-based tests of the event contract: valid events, every rejection
reason, time handling, topics, and the checked-in JSON Schema files."""

from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import REASONS, Event, Rejected, parse_event
from schemas.generate import SCHEMA_DIR, render_all
from schemas.models import (
    TOPIC_TYPES,
    TYPE_TO_DATA,
    AnyData,
    CostRecorded,
    InvoiceFailed,
    InvoicePaid,
    SessionEnded,
    SessionHeartbeat,
    SessionStarted,
    SubscriptionCanceled,
    SubscriptionChanged,
    SubscriptionRenewed,
    SubscriptionStarted,
    SurveyAnswered,
    TicketOpened,
    TicketReopened,
    TicketReplied,
    TicketResolved,
    TrialConverted,
    TrialExpired,
)

NOW = 1_795_417_200.0  # 2026-11-23T07:00:00Z
TIME = "2026-11-23T07:00:00Z"

A = {"account_id": "acme"}
T = {**A, "ticket_id": "T-1"}
S = {**A, "session_id": "s-1", "user_id": "u-1"}
SUB = {**A, "subscription_id": "sub-1"}
PRICED: dict[str, Any] = {**SUB, "plan": "pro", "mrr_cents": 4900, "currency": "USD"}
INVOICE: dict[str, Any] = {**A, "invoice_id": "in-1", "amount_cents": 4900, "currency": "USD"}

# type -> (minimal data, the Struct it must decode to, defaults spelled out)
MINIMAL: dict[str, tuple[dict[str, Any], AnyData]] = {
    "ticket.opened": (T, TicketOpened(**T, channel="other", user_id=None)),
    "ticket.replied": (
        {**T, "author": "customer"},
        TicketReplied(**T, author="customer", agent_id=None),
    ),
    "ticket.resolved": (T, TicketResolved(**T, agent_id=None)),
    "ticket.reopened": (T, TicketReopened(**T)),
    "survey.answered": (
        {**A, "kind": "csat", "score": 4},
        SurveyAnswered(**A, kind="csat", score=4.0, scale_max=5, comment=None),
    ),
    "session.started": (S, SessionStarted(**S, platform="other")),
    "session.heartbeat": (S, SessionHeartbeat(**S)),
    "session.ended": (S, SessionEnded(**S)),
    "subscription.started": (PRICED, SubscriptionStarted(**PRICED, trial=False)),
    "subscription.changed": (PRICED, SubscriptionChanged(**PRICED)),
    "subscription.renewed": (SUB, SubscriptionRenewed(**SUB)),
    "subscription.canceled": (SUB, SubscriptionCanceled(**SUB, at_term_end=False, reason=None)),
    "trial.converted": (PRICED, TrialConverted(**PRICED)),
    "trial.expired": (SUB, TrialExpired(**SUB)),
    "invoice.paid": (INVOICE, InvoicePaid(**INVOICE)),
    "invoice.failed": (INVOICE, InvoiceFailed(**INVOICE)),
    "cost.recorded": (
        {**A, "amount_cents": 120000, "currency": "USD", "category": "tooling"},
        CostRecorded(**A, amount_cents=120000, currency="USD", category="tooling"),
    ),
}

FULL: dict[str, dict[str, Any]] = {
    "ticket.opened": {**T, "channel": "chat", "user_id": "u-1"},
    "ticket.replied": {**T, "author": "agent", "agent_id": "ana"},
    "ticket.resolved": {**T, "agent_id": "ana"},
    "survey.answered": {
        **A,
        "kind": "nps",
        "score": 9,
        "scale_max": 10,
        "comment": "Très bien 👍",
        "user_id": "u-1",
        "ticket_id": "T-1",
        "agent_id": "ana",
    },
    "session.started": {**S, "platform": "ios"},
    "subscription.started": {**PRICED, "trial": True},
    "subscription.canceled": {**SUB, "at_term_end": True, "reason": "too expensive"},
}


def envelope(event_type: str, data: Any, **overrides: Any) -> dict[str, Any]:
    """A valid envelope around `data`, with fields replaced or added by `overrides`."""
    return {
        "specversion": "1.0",
        "id": "9f1c6c1e-3b7f-4d1e-9c0a-2a6f0d5e7b11",
        "source": "helpdesk",
        "type": event_type,
        "time": TIME,
        "data": data,
        **overrides,
    }


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


def parse(value: Any, **kwargs: Any) -> Event | Rejected:
    raw = value if isinstance(value, bytes) else msgspec.json.encode(value)
    return parse_event(raw, now=NOW, **kwargs)


def accepted(value: Any, **kwargs: Any) -> Event:
    result = parse(value, **kwargs)
    assert isinstance(result, Event), result
    return result


# --- valid events ------------------------------------------------------------


def test_examples_cover_every_type() -> None:
    assert set(MINIMAL) == set(TYPE_TO_DATA)
    assert set().union(*TOPIC_TYPES.values()) == set(TYPE_TO_DATA)


@pytest.mark.parametrize("event_type", sorted(MINIMAL))
def test_minimal_event_parses_with_defaults(event_type: str) -> None:
    data, expected = MINIMAL[event_type]
    event = accepted(envelope(event_type, data))
    assert event == Event(
        id="9f1c6c1e-3b7f-4d1e-9c0a-2a6f0d5e7b11",
        source="helpdesk",
        type=event_type,
        time=NOW,
        account_id="acme",
        data=expected,
    )
    assert type(event.data) is TYPE_TO_DATA[event_type]


@pytest.mark.parametrize("event_type", sorted(FULL))
def test_optional_fields_are_kept(event_type: str) -> None:
    data = FULL[event_type]
    event = accepted(envelope(event_type, data))
    assert msgspec.structs.asdict(event.data) | data == msgspec.structs.asdict(event.data)


@pytest.mark.parametrize(("kind", "scale_max"), [("nps", 10), ("ces", 7), ("csat", 5)])
def test_scale_max_defaults_per_kind(kind: str, scale_max: int) -> None:
    event = accepted(envelope("survey.answered", {**A, "kind": kind, "score": 5}))
    assert isinstance(event.data, SurveyAnswered)
    assert event.data.scale_max == scale_max


def test_unknown_fields_are_ignored_everywhere() -> None:
    data = {**T, "priority": "high", "tags": [{"deep": [1, {"x": None}]}], "channel": "web"}
    event = accepted(envelope("ticket.opened", data, datacontenttype="application/json", x=[1]))
    assert event.data == TicketOpened(**T, channel="web")


@pytest.mark.parametrize(
    ("time", "unix"),
    [
        ("2026-11-23T09:00:00+02:00", NOW),
        ("2026-11-23T01:30:00-05:30", NOW),
        ("2026-11-23T07:00:00.250Z", NOW + 0.25),
        ("2026-11-23T06:59:59.5+00:00", NOW - 0.5),
        ("2026-11-23t07:00:00z", NOW),
    ],
)
def test_offsets_convert_to_unix_time(time: str, unix: float) -> None:
    assert accepted(envelope("ticket.reopened", T, time=time)).time == pytest.approx(unix, abs=1e-6)


def test_future_limit_is_inclusive_and_configurable() -> None:
    assert accepted(envelope("ticket.reopened", T, time="2026-11-23T07:05:00Z")).time == NOW + 300
    late = envelope("ticket.reopened", T, time="2026-11-23T07:05:01Z")
    assert parse(late) == Rejected(
        "future_time", "time is 301 s ahead of now (max 300 s) at `$.time`"
    )
    assert isinstance(parse(late, max_future_seconds=301), Event)


@pytest.mark.parametrize(
    ("time", "unix"),
    [
        ("2026-11-22T23:59:60Z", NOW - 7 * 3600),  # = 2026-11-23T00:00:00Z, as POSIX counts it
        ("2026-11-22T23:59:60.25Z", NOW - 7 * 3600 + 0.25),
        ("2026-11-22T15:59:60-08:00", NOW - 7 * 3600),
        ("2026-11-23T01:29:60+01:30", NOW - 7 * 3600),
    ],
)
def test_leap_second_at_the_end_of_a_utc_day_is_accepted(time: str, unix: float) -> None:
    event = accepted(envelope("ticket.reopened", T, time=time))
    assert event.time == pytest.approx(unix, abs=1e-6)


def test_leap_second_then_a_bad_field_reports_that_field() -> None:
    leap_first = {"time": "2026-11-22T23:59:60Z", **without(env(), "time")}
    assert isinstance(parse(leap_first), Event)
    leap_first["id"] = 5
    assert parse(leap_first) == Rejected("bad_type", "Expected `str`, got `int` at `$.id`")


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("ticket.opened", "account_id", "a" * 128),
        ("ticket.opened", "ticket_id", "é" * 128),  # characters, not bytes
        ("ticket.opened", "user_id", 'org:7 / team@x "quoted" \\ 👍'),
        ("session.started", "session_id", "s" * 128),
        ("subscription.started", "plan", "p" * 64),
        ("subscription.started", "plan", "Pro (annual) - €"),
        ("cost.recorded", "category", "ü" * 64),
        ("subscription.canceled", "reason", "r" * 256),
        ("subscription.canceled", "reason", ""),
        ("subscription.canceled", "reason", "non-breaking\u00a0space, line\u2028separator"),
    ],
)
def test_names_within_their_limits_are_accepted(event_type: str, field: str, value: str) -> None:
    event = accepted(payload(event_type, **{field: value}))
    assert getattr(event.data, field) == value


def test_event_id_at_its_limit_is_accepted() -> None:
    assert accepted(env(id="i" * 128)).id == "i" * 128


def test_control_character_detail_names_the_field_and_the_rule() -> None:
    assert parse(payload("ticket.reopened", ticket_id="T\x1b[31m")) == Rejected(
        "bad_type",
        "control character U+001B at `$.data.ticket_id`: "
        "ids, plans, categories and reasons must be printable",
    )


def test_comment_limit_counts_characters_not_bytes() -> None:
    data = {**A, "kind": "csat", "score": 5, "comment": "é" * 10_000}
    assert accepted(envelope("survey.answered", data)).data == SurveyAnswered(
        **A, kind="csat", score=5, scale_max=5, comment="é" * 10_000
    )


def test_reporting_currency_is_configurable() -> None:
    data = {**INVOICE, "currency": "EUR"}
    assert isinstance(parse(envelope("invoice.paid", data), reporting_currency="EUR"), Event)


@pytest.mark.parametrize(
    ("suffix", "event_type"),
    sorted((suffix, t) for suffix, types in TOPIC_TYPES.items() for t in types),
)
def test_every_type_is_accepted_on_its_topic(suffix: str, event_type: str) -> None:
    data, _ = MINIMAL[event_type]
    for topic in (f"cs.{suffix}", f"prod-cs-{suffix}", suffix):
        assert isinstance(parse(envelope(event_type, data), topic=topic), Event), topic


def test_topics_without_a_known_suffix_are_not_checked() -> None:
    assert isinstance(parse(envelope("ticket.reopened", T), topic="cs.deadletter"), Event)


# --- rejections --------------------------------------------------------------


def env(**fields: Any) -> dict[str, Any]:
    """A valid ticket.reopened event with envelope `fields` replaced."""
    return {**envelope("ticket.reopened", T), **fields}


def payload(event_type: str, **fields: Any) -> dict[str, Any]:
    """The minimal valid `event_type` event with data `fields` replaced."""
    return envelope(event_type, {**MINIMAL[event_type][0], **fields})


OK = msgspec.json.encode(env())
REPLY = payload("ticket.replied", author="agent", agent_id="ana")
SURVEY = "survey.answered"
CANCEL = "subscription.canceled"
REOPEN = "ticket.reopened"
DEEP = b"[" * 50_000 + b"]" * 50_000

REJECTIONS: list[tuple[str, Any, str, str]] = [
    # (case, input, reason, text the detail must contain)
    ("truncated", OK[:-1], "not_json", "truncated"),
    ("garbage", b"hello", "not_json", "malformed"),
    ("empty", b"", "not_json", ""),
    ("nan", OK.replace(b"}}", b'}, "x": NaN}'), "not_json", "malformed"),
    ("trailing", OK + b" x", "not_json", "trailing"),
    ("bom", b"\xef\xbb\xbf" + OK, "not_json", "malformed"),
    ("bad utf-8 in a used field", OK.replace(b"T-1", b"T-\xff"), "not_json", "utf-8"),
    ("bad utf-8 in an ignored field", OK.replace(b"}}", b'}, "x": "\xc3("}'), "not_json", "utf-8"),
    ("lone surrogate", OK.replace(b"T-1", b"T-\\ud800"), "not_json", ""),
    ("array then garbage", b"[1,", "not_json", ""),
    ("wrong type then garbage", b'{"id": 5, ', "not_json", ""),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "not_json", "deep"),
    ("deep nesting in data", OK.replace(b"}}", b'}, "x": ' + DEEP + b"}"), "not_json", "deep"),
    ("array", [], "not_object", "`$`"),
    ("string", "x", "not_object", "`$`"),
    ("null", None, "not_object", "`$`"),
    ("no id", without(env(), "id"), "missing_field", "`$.id`"),
    ("no type", without(env(), "type"), "missing_field", "`$.type`"),
    ("no data", without(env(), "data"), "missing_field", "`$.data`"),
    ("no account", env(data={"ticket_id": "T"}), "missing_field", "`$.data.account_id`"),
    ("no ticket", envelope("ticket.opened", A), "missing_field", "`$.data.ticket_id`"),
    ("agent without id", payload("ticket.replied", author="agent"), "missing_field", "agent_id"),
    ("agent null", payload("ticket.replied", author="agent", agent_id=None), "missing_field", ""),
    ("id too long", env(id="x" * 129), "bad_type", "`$.id`"),
    ("empty id", env(id=""), "bad_type", "`$.id`"),
    ("empty source", env(source=""), "bad_type", "`$.source`"),
    ("data not object", env(data=[T]), "bad_type", "`$.data`"),
    ("data null", env(data=None), "bad_type", "`$.data`"),
    ("account not str", payload("ticket.reopened", account_id=7), "bad_type", "account_id"),
    ("empty ticket id", payload("ticket.reopened", ticket_id=""), "bad_type", "`$.data.ticket_id`"),
    ("null ticket id", payload("ticket.reopened", ticket_id=None), "bad_type", "ticket_id"),
    ("bad channel", payload("ticket.opened", channel="fax"), "bad_type", "`$.data.channel`"),
    ("bad author", payload("ticket.replied", author="bot"), "bad_type", "`$.data.author`"),
    ("bad platform", payload("session.started", platform="tv"), "bad_type", "`$.data.platform`"),
    ("negative mrr", payload("subscription.changed", mrr_cents=-1), "bad_type", "mrr_cents"),
    ("fractional mrr", payload("subscription.changed", mrr_cents=4.5), "bad_type", "mrr_cents"),
    ("huge amount", payload("invoice.paid", amount_cents=2**63), "bad_type", "amount_cents"),
    ("trial not bool", payload("subscription.started", trial="yes"), "bad_type", "`$.data.trial`"),
    ("score as string", payload(SURVEY, score="4"), "bad_type", "`$.data.score`"),
    ("score bool", payload(SURVEY, score=True), "bad_type", "`$.data.score`"),
    ("comment too long", payload(SURVEY, comment="x" * 10_001), "bad_type", "`$.data.comment`"),
    ("scale_max 6", payload(SURVEY, scale_max=6), "bad_type", "`$.data.scale_max`"),
    ("nps on 5", payload(SURVEY, kind="nps", scale_max=5), "bad_type", "`$.data.scale_max`"),
    ("ces on 10", payload(SURVEY, kind="ces", scale_max=10), "bad_type", "`$.data.scale_max`"),
    ("bad kind", payload(SURVEY, kind="ces2"), "bad_type", "`$.data.kind`"),
    ("specversion 0.3", env(specversion="0.3"), "bad_specversion", "'0.3'"),
    ("specversion number", env(specversion=1.0), "bad_specversion", "`$.specversion`"),
    ("unknown type", env(type="ticket.deleted"), "unknown_type", "'ticket.deleted'"),
    ("type number", env(type=7), "unknown_type", "`$.type`"),
    ("naive time", env(time="2026-11-23T07:00:00"), "bad_time", "offset"),
    ("date only", env(time="2026-11-23"), "bad_time", "`$.time`"),
    ("no such day", env(time="2026-02-30T00:00:00Z"), "bad_time", "`$.time`"),
    ("words", env(time="yesterday"), "bad_time", "`$.time`"),
    ("unix number", env(time=NOW), "bad_time", "`$.time`"),
    ("future", env(time="2026-11-23T08:00:00Z"), "future_time", "3600 s"),
    ("far future", env(time="9999-12-31T23:59:59-14:00"), "future_time", "`$.time`"),
    ("nps 11", payload(SURVEY, kind="nps", score=11), "score_range", "0-10"),
    ("nps -1", payload(SURVEY, kind="nps", score=-1), "score_range", "0-10"),
    ("ces 0", payload(SURVEY, kind="ces", score=0), "score_range", "1-7"),
    ("ces 8", payload(SURVEY, kind="ces", score=8), "score_range", "1-7"),
    ("csat 0", payload(SURVEY, score=0), "score_range", "1-5"),
    ("csat 6 of 5", payload(SURVEY, score=6), "score_range", "1-5"),
    ("csat 8 of 7", payload(SURVEY, score=8, scale_max=7), "score_range", "1-7"),
    ("csat 10.5 of 10", payload(SURVEY, score=10.5, scale_max=10), "score_range", "1-10"),
    ("huge score", payload(SURVEY, score=10**30), "score_range", "`$.data.score`"),
    ("long account", payload("ticket.reopened", account_id="a" * 129), "bad_type", "account_id`"),
    ("long user id", payload("session.ended", user_id="u" * 129), "bad_type", "`$.data.user_id`"),
    ("long plan", payload("subscription.started", plan="p" * 65), "bad_type", "`$.data.plan`"),
    ("long category", payload("cost.recorded", category="c" * 65), "bad_type", "category`"),
    ("long reason", payload(CANCEL, reason="r" * 257), "bad_type", "`$.data.reason`"),
    ("newline in account", payload(REOPEN, account_id="acme\n"), "bad_type", "U+000A at `$.data.a"),
    ("escape in ticket", payload(REOPEN, ticket_id="\x1b[2J"), "bad_type", "U+001B at `$.data.t"),
    ("NUL in plan", payload("subscription.changed", plan="pro\x00"), "bad_type", "U+0000 at `$.d"),
    ("DEL in category", payload("cost.recorded", category="t\x7f"), "bad_type", "U+007F at `$.d"),
    ("C1 in reason", payload(CANCEL, reason="a\x85b"), "bad_type", "U+0085 at `$.data.reason`"),
    ("tab in event id", env(id="a\tb"), "bad_type", "U+0009 at `$.id`"),
    ("leap second mid-day", env(time="2026-11-23T06:59:60Z"), "bad_time", "23:59:60 UTC"),
    ("leap second, no offset", env(time="2026-11-22T23:59:60"), "bad_time", "`$.time`"),
    ("second 61", env(time="2026-11-22T23:59:61Z"), "bad_time", "`$.time`"),
    ("leap second, no such day", env(time="2026-02-29T23:59:60Z"), "bad_time", "`$.time`"),
    ("euro", payload("invoice.paid", currency="EUR"), "currency", "'EUR'"),
    ("lower case", payload("cost.recorded", currency="usd"), "currency", "'usd'"),
    ("mrr in euro", payload("subscription.started", currency="EUR"), "currency", "currency`"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "reason", "detail"),
    [pytest.param(value, reason, detail, id=case) for case, value, reason, detail in REJECTIONS],
)
def test_rejection(value: Any, reason: str, detail: str) -> None:
    result = parse(value)
    assert isinstance(result, Rejected), result
    assert (result.reason, detail in result.detail) == (reason, True), result
    assert 0 < len(result.detail) <= 300


def test_wrong_topic() -> None:
    result = parse(REPLY, topic="cs.billing")
    assert result == Rejected(
        "wrong_topic", "'ticket.replied' does not belong on topic 'cs.billing'"
    )


def test_every_reason_is_documented_and_exercised() -> None:
    exercised = {reason for _, _, reason, _ in REJECTIONS} | {"wrong_topic"}
    assert exercised == set(REASONS)


def test_huge_values_give_short_details() -> None:
    result = parse(payload("ticket.opened", channel="x" * 1_000_000))
    assert isinstance(result, Rejected)
    assert result.reason == "bad_type"
    assert len(result.detail) <= 300


def test_huge_valid_event_is_accepted() -> None:
    assert isinstance(parse(payload("ticket.reopened", blob="x" * 5_000_000)), Event)


# --- JSON Schema files ---------------------------------------------------------


def test_checked_in_json_schemas_are_current() -> None:
    rendered = render_all()
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in SCHEMA_DIR.glob("*.json")}
    stale = sorted(n for n in rendered.keys() | on_disk.keys() if rendered.get(n) != on_disk.get(n))
    assert not stale, f"stale JSON Schema files {stale}: run `python -m schemas.generate`"


def test_one_schema_file_per_type() -> None:
    rendered = render_all()
    assert set(rendered) == {f"{t}.json" for t in TYPE_TO_DATA}
    for name, text in rendered.items():
        schema = msgspec.json.decode(text)
        assert schema["properties"]["type"] == {"const": Path(name).stem}
        assert text.endswith("}\n")
    assert render_all() == rendered
