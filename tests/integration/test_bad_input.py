"""Bad input through the real broker: the worker stays up and the books balance.

Hypothesis draws lists of messages (arbitrary bytes, truncated events,
10,000-level nesting, huge strings, wrong types, missing fields, boundary
timestamps and survey scores, wrong currencies, unknown types, wrong topics,
messages without key, exact duplicates) mixed with valid events, and every
message is built knowing what the contract says must happen to it. One
worker serves every example; each example appends to the same topics, so
the checks are cumulative: published = applied + dead-lettered +
duplicates, every dead letter carries the original bytes and says where it
came from and why, and the business metrics equal the reference
computation over every valid event published so far.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
import redis
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from schemas.models import FAMILY_NAMES
from streams.config import Settings
from streams.demo.embedded import start_redis
from streams.topics import create_topics
from tests import reference
from tests.compare import mismatches
from tests.harness import (
    Published,
    Stack,
    WorkerProcess,
    consume_all,
    last_offsets,
    publish,
    scrape,
    wait_applied,
)
from tests.integration.conftest import fresh_names
from tests.scenarios import topic_of

pytestmark = pytest.mark.slow

FAMILIES = FAMILY_NAMES
ACCOUNTS = ("acme", "globex", "initech", "umbrella")
TYPES = (
    "ticket.opened",
    "ticket.replied",
    "ticket.resolved",
    "ticket.reopened",
    "survey.answered",
    "session.started",
    "session.heartbeat",
    "session.ended",
    "subscription.started",
    "subscription.changed",
    "subscription.renewed",
    "subscription.canceled",
    "trial.converted",
    "trial.expired",
    "invoice.paid",
    "invoice.failed",
    "cost.recorded",
)
PRICED = (
    "subscription.started",
    "subscription.changed",
    "trial.converted",
    "invoice.paid",
    "invoice.failed",
    "cost.recorded",
)
TZ_MINUTES = (0, 0, 60, 330, -480, 840, -720)
"""UTC offsets events are written with (+14:00 and -12:00 are the extremes)."""
DEAD_LETTER_HEADERS = ("cs-source-topic", "cs-source-partition", "cs-source-offset", "cs-reason")


# --------------------------------------------------------------------------- what is drawn


@dataclass(frozen=True)
class Spec:
    """A valid event, its time relative to the moment the example is published."""

    type: str
    data: dict[str, Any]
    dt_ms: int
    tz_minutes: int = 0
    snap: int = 0
    """Round the time down to a multiple of this many seconds (bucket edges); 0: no."""


@dataclass(frozen=True)
class Draft:
    """One message to build: a case of (in)validity applied to a valid event."""

    case: str
    spec: Spec
    arg: Any = None
    keyed: bool = True


def pick(prefix: str, n: int) -> st.SearchStrategy[str]:
    return st.sampled_from([f"{prefix}{i}" for i in range(1, n + 1)])


tickets, sessions, users, agents = pick("T", 3), pick("S", 3), pick("u", 4), pick("ag", 2)
subscriptions, invoices = pick("B", 3), pick("I", 5)
plans = st.sampled_from(["basic", "team", "pro", ""])
money = st.integers(0, 500_000) | st.sampled_from([0, 999, 10_000])
usd = st.just("USD")
PHRASES = ("Great help, thanks!", "Slow and confusing.", "ok", "   ", "Terrible. Never again!!")
comments = st.none() | st.sampled_from(PHRASES) | st.text(max_size=40)


@st.composite
def survey_data(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["nps", "csat", "ces"]))
    data: dict[str, Any] = {"kind": kind}
    if kind == "nps":
        top, bottom = 10, 0
        if draw(st.booleans()):
            data["scale_max"] = 10
    elif kind == "csat":
        scale = draw(st.sampled_from([None, 5, 7, 10]))
        top, bottom = scale or 5, 1
        if scale is not None:
            data["scale_max"] = scale
    else:
        top, bottom = 7, 1
        if draw(st.booleans()):
            data["scale_max"] = 7
    data["score"] = draw(
        st.sampled_from([bottom, top, (bottom + top) // 2])
        | st.integers(bottom, top)
        | st.floats(bottom, top, allow_subnormal=False)
    )
    comment = draw(comments)
    if comment is not None:
        data["comment"] = comment
    for name, values in (("user_id", users), ("ticket_id", tickets), ("agent_id", agents)):
        if draw(st.booleans()):
            data[name] = draw(values)
    return data


def fixed(required: dict[str, Any], optional: dict[str, Any] | None = None) -> Any:
    return st.fixed_dictionaries(required, optional=optional or {})


DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "ticket.opened": fixed(
        {"ticket_id": tickets},
        {
            "channel": st.sampled_from(["email", "chat", "phone", "web", "social", "other"]),
            "user_id": users,
        },
    ),
    "ticket.replied": fixed({"ticket_id": tickets, "author": st.just("agent"), "agent_id": agents})
    | fixed({"ticket_id": tickets, "author": st.just("customer")}),
    "ticket.resolved": fixed({"ticket_id": tickets}, {"agent_id": agents}),
    "ticket.reopened": fixed({"ticket_id": tickets}),
    "survey.answered": survey_data(),
    "session.started": fixed(
        {"session_id": sessions, "user_id": users},
        {"platform": st.sampled_from(["web", "ios", "android", "desktop", "api", "other"])},
    ),
    "session.heartbeat": fixed({"session_id": sessions, "user_id": users}),
    "session.ended": fixed({"session_id": sessions, "user_id": users}),
    "subscription.started": fixed(
        {"subscription_id": subscriptions, "plan": plans, "mrr_cents": money, "currency": usd},
        {"trial": st.booleans()},
    ),
    "subscription.changed": fixed(
        {"subscription_id": subscriptions, "plan": plans, "mrr_cents": money, "currency": usd}
    ),
    "subscription.renewed": fixed({"subscription_id": subscriptions}),
    "subscription.canceled": fixed(
        {"subscription_id": subscriptions},
        {"at_term_end": st.booleans(), "reason": st.sampled_from(["price", "missing features"])},
    ),
    "trial.converted": fixed(
        {"subscription_id": subscriptions, "plan": plans, "mrr_cents": money, "currency": usd}
    ),
    "trial.expired": fixed({"subscription_id": subscriptions}),
    "invoice.paid": fixed({"invoice_id": invoices, "amount_cents": money, "currency": usd}),
    "invoice.failed": fixed({"invoice_id": invoices, "amount_cents": money, "currency": usd}),
    "cost.recorded": fixed(
        {
            "amount_cents": money,
            "currency": usd,
            "category": st.sampled_from(["payroll", "tooling", "training"]),
        }
    ),
}


@st.composite
def specs(draw: st.DrawFn, types: tuple[str, ...] = TYPES) -> Spec:
    event_type = draw(st.sampled_from(types))
    account = draw(st.sampled_from(ACCOUNTS))
    # users are shared by the accounts, which span both partitions: a user counts once
    data = {"account_id": account, **draw(DATA[event_type])}
    age = draw(st.integers(0, 9))
    if age == 0:
        dt_ms = 290_000  # 10 s inside the 300 s future limit
    elif age <= 2:
        dt_ms = -draw(st.integers(1_000, 29 * 86_400_000))  # inside the 30 d window
    else:
        dt_ms = -draw(st.integers(1_000, 3 * 3_600_000))
    snap = draw(st.sampled_from([0, 0, 0, 60, 300, 3600]))
    return Spec(event_type, data, dt_ms, draw(st.sampled_from(TZ_MINUTES)), snap)


ENVELOPE_MUTATIONS: list[tuple[str, Any, str]] = [
    ("id", 5, "bad_type"),
    ("id", "", "bad_type"),
    ("id", "x" * 129, "bad_type"),
    ("source", "", "bad_type"),
    ("source", None, "bad_type"),
    ("source", ["helpdesk"], "bad_type"),
    ("specversion", "2.0", "bad_specversion"),
    ("specversion", 1.0, "bad_specversion"),
    ("specversion", None, "bad_specversion"),
    ("type", 7, "unknown_type"),
    ("type", None, "unknown_type"),
    ("time", 1_767_225_600, "bad_time"),
    ("time", None, "bad_time"),
    ("time", "yesterday", "bad_time"),
    ("data", "x", "bad_type"),
    ("data", [], "bad_type"),
    ("data", None, "bad_type"),
    ("data", 3, "bad_type"),
    ("data.account_id", 42, "bad_type"),
    ("data.account_id", "", "bad_type"),
    ("data.account_id", None, "bad_type"),
]
MONEY_MUTATIONS = [(-1, "bad_type"), (1.5, "bad_type"), (2**63, "bad_type"), ("100", "bad_type")]


def type_mutations(spec: Spec) -> list[tuple[str, Any, str]]:
    """Wrong values for the fields of this event type (one field at a time)."""
    t, data, out = spec.type, spec.data, []
    if t.startswith("ticket."):
        out += [("data.ticket_id", 17, "bad_type"), ("data.ticket_id", "", "bad_type")]
    if t == "ticket.opened":
        out += [("data.channel", "fax", "bad_type"), ("data.user_id", "", "bad_type")]
    if t == "ticket.replied":
        out += [("data.author", "bot", "bad_type"), ("data.author", None, "bad_type")]
    if t == "survey.answered":
        out += [
            ("data.score", "9", "bad_type"),
            ("data.score", True, "bad_type"),
            ("data.score", None, "bad_type"),
            ("data.kind", "promoter", "bad_type"),
            ("data.comment", 5, "bad_type"),
            ("data.scale_max", 6, "bad_type"),
        ]
        contradiction = {"nps": 7, "ces": 10}.get(data["kind"])
        if contradiction is not None:  # nps is always 0-10, ces 1-7
            out.append(("data.scale_max", contradiction, "bad_type"))
    if t.startswith("session."):
        out += [("data.session_id", "", "bad_type"), ("data.user_id", 3, "bad_type")]
    if t == "session.started":
        out.append(("data.platform", "tv", "bad_type"))
    if "mrr_cents" in data:
        out += [("data.mrr_cents", v, r) for v, r in MONEY_MUTATIONS]
        out.append(("data.plan", None, "bad_type"))
    if "amount_cents" in data:
        out += [("data.amount_cents", v, r) for v, r in MONEY_MUTATIONS]
    if "currency" in data:
        out.append(("data.currency", None, "bad_type"))
    if t == "subscription.started":
        out.append(("data.trial", "yes", "bad_type"))
    if t == "subscription.canceled":
        out.append(("data.at_term_end", "no", "bad_type"))
    return out


REQUIRED: dict[str, tuple[str, ...]] = {
    "ticket.opened": ("ticket_id",),
    "ticket.replied": ("ticket_id", "author"),
    "ticket.resolved": ("ticket_id",),
    "ticket.reopened": ("ticket_id",),
    "survey.answered": ("kind", "score"),
    "session.started": ("session_id", "user_id"),
    "session.heartbeat": ("session_id", "user_id"),
    "session.ended": ("session_id", "user_id"),
    "subscription.started": ("subscription_id", "plan", "mrr_cents", "currency"),
    "subscription.changed": ("subscription_id", "plan", "mrr_cents", "currency"),
    "subscription.renewed": ("subscription_id",),
    "subscription.canceled": ("subscription_id",),
    "trial.converted": ("subscription_id", "plan", "mrr_cents", "currency"),
    "trial.expired": ("subscription_id",),
    "invoice.paid": ("invoice_id", "amount_cents", "currency"),
    "invoice.failed": ("invoice_id", "amount_cents", "currency"),
    "cost.recorded": ("amount_cents", "currency", "category"),
}


def required_fields(spec: Spec) -> list[str]:
    names = ["specversion", "id", "source", "type", "time", "data", "data.account_id"]
    names += [f"data.{n}" for n in REQUIRED[spec.type]]
    if spec.data.get("author") == "agent":  # agent_id is required when the author is an agent
        names.append("data.agent_id")
    return names


SCORE_EDGES: list[tuple[str, int | None, float, bool]] = [
    ("nps", None, -1, False),
    ("nps", None, 0, True),
    ("nps", None, 10, True),
    ("nps", None, 10.5, False),
    ("nps", None, 11, False),
    ("csat", 7, 0, False),
    ("csat", 7, 1, True),
    ("csat", 7, 7, True),
    ("csat", 7, 8, False),
    ("csat", None, 5, True),
    ("csat", None, 6, False),
    ("csat", None, 0.5, False),
    ("csat", 10, 10, True),
    ("csat", 10, 10.01, False),
    ("ces", None, 0, False),
    ("ces", None, 1, True),
    ("ces", None, 7, True),
    ("ces", None, 8, False),
    ("ces", None, 0.99, False),
]
"""(kind, scale_max, score, valid): nps 0-10, csat 1..scale_max (default 5), ces 1-7."""

TIME_CASES: dict[str, tuple[str | int | None, frozenset[str]]] = {
    # name: (the time: an offset in seconds from now, a fixed string, or None: naive; reasons)
    "now+290s": (290, frozenset()),
    "now+400s": (400, frozenset({"future_time"})),
    "year 9999": ("9999-12-31T23:59:59Z", frozenset({"future_time"})),
    "year 9999 -14:00": ("9999-12-31T23:59:59-14:00", frozenset({"future_time", "bad_time"})),
    "naive": (None, frozenset({"bad_time"})),
    "year 1970": ("1970-01-01T00:00:00Z", frozenset({"too_late"})),
    "before 1970": ("1970-01-01T00:00:00+01:00", frozenset({"too_late"})),
    "year 1 +14:00": ("0001-01-01T00:00:00+14:00", frozenset({"too_late", "bad_time"})),
    "february 30": ("2026-02-30T12:00:00Z", frozenset({"bad_time"})),
    "hour 24": ("2026-01-01T24:00:00Z", frozenset({"bad_time"})),
    "date only": ("2026-11-23", frozenset({"bad_time"})),
    "offset hours only": ("2026-11-23T07:00:00+01", frozenset({"bad_time"})),
    "words": ("last tuesday", frozenset({"bad_time"})),
}
NESTED = {
    "open arrays": (b"[" * 10_000, frozenset({"not_json"})),
    "closed arrays": (b"[" * 10_000 + b"]" * 10_000, frozenset({"not_json", "not_object"})),
    "objects": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, frozenset({"not_json", "missing_field"})),
}
"""Also a valid event with 10,000 levels in an unknown field (case ``deep_extra``):
REASONS documents that nesting deeper than the parser allows is ``not_json``."""
HUGE = ("comment 10000", "comment 10001", "comment 1M", "unknown field 900k", "garbage 900k")
"""Each below 1 MiB, the publishing producer's default request limit."""

json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
extras = st.dictionaries(st.text(max_size=6).map(lambda s: "x_" + s), json_values, max_size=3)


def not_an_object(raw: bytes) -> bool:
    """Bytes that cannot be a JSON object: the first non-blank byte is not ``{``."""
    return not raw.lstrip(b" \t\r\n").startswith(b"{")


CASES = (
    *["valid"] * 10,
    "extras",
    "nested_ok",
    "mutate",
    "mutate",
    "drop",
    "score",
    "score",
    "currency",
    "unknown_type",
    "wrong_topic",
    "time",
    "time",
    "truncated",
    "bytes",
    "nested",
    "deep_extra",
    "bad_utf8",
)


@st.composite
def drafts(draw: st.DrawFn) -> Draft:
    case = draw(st.sampled_from(CASES))
    keyed = draw(st.integers(0, 9)) > 0
    if case == "score":
        spec = draw(specs(("survey.answered",)))
        return Draft(case, spec, draw(st.sampled_from(SCORE_EDGES)), keyed)
    if case == "currency":
        spec = draw(specs(PRICED))
        return Draft(case, spec, draw(st.sampled_from(["EUR", "usd", "", "US D"])), keyed)
    spec = draw(specs())
    arg: Any = None
    if case == "extras":
        arg = (draw(extras), draw(extras))
    elif case == "nested_ok":
        arg = draw(st.integers(1, 200))
    elif case == "mutate":
        arg = draw(st.sampled_from(ENVELOPE_MUTATIONS + type_mutations(spec)))
    elif case == "drop":
        arg = draw(st.sampled_from(required_fields(spec)))
    elif case == "unknown_type":
        arg = draw(st.sampled_from(["ticket.exploded", "Ticket.Opened", "", "survey.answered.v2"]))
    elif case == "wrong_topic":
        arg = draw(st.sampled_from([f for f in FAMILIES if f != topic_of(spec.type)]))
    elif case == "time":
        arg = draw(st.sampled_from(sorted(TIME_CASES)))
    elif case == "truncated":
        arg = draw(st.floats(0, 1, exclude_max=True))
    elif case == "bytes":
        arg = draw(st.binary(max_size=300).filter(not_an_object))
    elif case == "nested":
        arg = draw(st.sampled_from(sorted(NESTED)))
    return Draft(case, spec, arg, keyed)


huge_drafts = st.tuples(st.sampled_from(HUGE), specs(("survey.answered",)), st.integers(0, 10**6))
duplicates = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=3, max_size=20
)


# --------------------------------------------------------------------------- what is built


@dataclass(frozen=True)
class Msg:
    """A message to publish and what must happen to it."""

    topic: str
    """Topic suffix (family)."""
    key: bytes | None
    value: bytes
    reasons: frozenset[str] = frozenset()
    """Acceptable dead-letter reasons; empty: applied (or a duplicate)."""
    event: dict[str, Any] | None = None
    """The event as the reference must see it, when applied."""
    duplicate: bool = False
    late: bool = False
    """Applied although too late for its buckets: it changes state (spec: "Too late")."""

    @property
    def dead(self) -> bool:
        return bool(self.reasons)

    @property
    def applied(self) -> bool:
        return not self.reasons and not self.duplicate


def changes_state(event_type: str) -> bool:
    """Ticket and subscription events change current state, so they apply even when too late."""
    return event_type.startswith(("ticket.", "subscription.", "trial."))


def render_time(now_ms: int, spec: Spec, offset_s: int | None = None, naive: bool = False) -> str:
    ts_ms = now_ms + (spec.dt_ms if offset_s is None else offset_s * 1000)
    if spec.snap and offset_s is None:
        ts_ms -= ts_ms % (spec.snap * 1000)
    tz = timezone(timedelta(minutes=spec.tz_minutes))
    when = datetime.fromtimestamp(ts_ms // 1000, UTC).astimezone(tz)
    when += timedelta(milliseconds=ts_ms % 1000)
    if naive:
        when = when.replace(tzinfo=None)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def set_path(event: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = event
    for name in parents:
        target = target[name]
    target[last] = value


def build(draft: Draft, now_ms: int, event_id: str) -> Msg:
    """The message of a draft, and what the contract says must happen to it."""
    spec = draft.spec
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "bad-input-test",
        "type": spec.type,
        "time": render_time(now_ms, spec),
        "data": copy.deepcopy(spec.data),
    }
    topic = topic_of(spec.type)
    if not draft.keyed:  # unkeyed: any partition, so an account of its own (its users are shared)
        event["data"]["account_id"] = f"solo-{event_id}"
    key = event["data"]["account_id"].encode() if draft.keyed else None

    def applied(ev: dict[str, Any] = event, value: bytes | None = None) -> Msg:
        return Msg(topic, key, orjson.dumps(ev) if value is None else value, event=ev)

    def dead(value: bytes | dict[str, Any], *reasons: str, where: str = topic) -> Msg:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        return Msg(where, key, raw, frozenset(reasons))

    case, arg = draft.case, draft.arg
    if case == "valid":
        return applied()
    if case == "extras":
        top, inner = arg
        return applied({**top, **event, "data": {**inner, **event["data"]}})
    if case == "nested_ok":
        raw = orjson.dumps({**event, "data": {**event["data"], "x_deep": None}})
        return applied(value=raw.replace(b"null", b"[" * arg + b"]" * arg))
    if case == "deep_extra":
        raw = orjson.dumps({**event, "data": {**event["data"], "x_deep": None}})
        return dead(raw.replace(b"null", b"[" * 10_000 + b"]" * 10_000), "not_json")
    if case == "mutate":
        path, value, reason = arg
        set_path(event, path, value)
        return dead(event, reason)
    if case == "drop":
        *parents, last = arg.split(".")
        (event[parents[0]] if parents else event).pop(last)
        return dead(event, "missing_field")
    if case == "score":
        kind, scale, score, valid = arg
        data = {k: v for k, v in event["data"].items() if k not in ("scale_max", "score")}
        data.update(kind=kind, score=score, **({} if scale is None else {"scale_max": scale}))
        event["data"] = data
        return applied() if valid else dead(event, "score_range")
    if case == "currency":
        event["data"]["currency"] = arg
        return dead(event, "currency")
    if case == "unknown_type":
        event["type"] = arg
        return dead(event, "unknown_type")
    if case == "wrong_topic":
        return dead(event, "wrong_topic", where=arg)
    if case == "time":
        when, reasons = TIME_CASES[arg]
        if isinstance(when, int):
            event["time"] = render_time(now_ms, spec, offset_s=when)
        else:
            event["time"] = render_time(now_ms, spec, naive=True) if when is None else when
        if "too_late" in reasons and changes_state(spec.type):
            return Msg(topic, key, orjson.dumps(event), event=event, late=True)
        return dead(event, *reasons) if reasons else applied()
    if case == "truncated":
        raw = orjson.dumps(event)
        return dead(raw[: int(arg * len(raw))], "not_json")
    if case == "bytes":
        return dead(arg, "not_json", "not_object")
    if case == "nested":
        raw, reasons = NESTED[arg]
        return dead(raw, *reasons)
    if case == "bad_utf8":
        event["source"] = "bad-input-\u00ff"
        return dead(orjson.dumps(event).replace("\u00ff".encode(), b"\xff"), "not_json")
    raise AssertionError(f"unknown case {case}")


def build_huge(case: str, spec: Spec, now_ms: int, event_id: str) -> Msg:
    msg = build(Draft("valid", spec), now_ms, event_id)
    assert msg.event is not None
    event = msg.event
    if case.startswith("comment"):
        length = {"comment 10000": 10_000, "comment 10001": 10_001, "comment 1M": 1_000_000}[case]
        # the limit counts characters, not bytes; 1M stays ASCII to keep the message < 1 MiB
        event["data"]["comment"] = ("\u00fc" if length <= 10_001 else "x") * length
        if length <= 10_000:
            return Msg(msg.topic, msg.key, orjson.dumps(event), event=event)
        return Msg(msg.topic, msg.key, orjson.dumps(event), frozenset({"bad_type"}))
    if case == "unknown field 900k":
        event["data"]["x_blob"] = "b" * 900_000
        return Msg(msg.topic, msg.key, orjson.dumps(event), event=event)
    return Msg(msg.topic, msg.key, b"\x00garbage" * 110_000, frozenset({"not_json"}))


def assemble(
    drafted: list[Draft],
    huge: list[tuple[str, Spec, int]],
    dups: list[tuple[int, int]],
    now_ms: int,
    run_id: str,
) -> list[Msg]:
    """Build every draft, insert the huge ones and exact copies of earlier messages."""
    ids = (f"{run_id}-{i}" for i in itertools.count())
    msgs = [build(d, now_ms, next(ids)) for d in drafted]
    for case, spec, where in huge:
        msgs.insert(where % (len(msgs) + 1), build_huge(case, spec, now_ms, next(ids)))
    after: dict[int, list[Msg]] = {}
    for source, where in dups:
        i = source % len(msgs)
        original = msgs[i]
        # a too-late event's id is remembered like an applied one's (its copy is a
        # duplicate, not late again); an event that may be too late or invalid is not copied
        remembered = original.applied or original.reasons == {"too_late"}
        if "too_late" in original.reasons and len(original.reasons) > 1:
            continue
        if remembered and original.key is None:
            continue  # an unkeyed copy may land on another partition: dedup is per partition
        copy_ = Msg(
            original.topic,
            original.key,
            original.value,
            frozenset() if remembered else original.reasons,
            duplicate=remembered,
        )
        after.setdefault(i + where % (len(msgs) - i), []).append(copy_)
    return [m for i, msg in enumerate(msgs) for m in (msg, *after.get(i, []))]


# --------------------------------------------------------------------------- the run


class Run:
    """One worker and everything published to it so far, with where it landed."""

    def __init__(self, stack: Stack, prefix: str, worker: WorkerProcess) -> None:
        self.stack, self.prefix, self.worker = stack, prefix, worker
        self.sent: list[tuple[Msg, Published]] = []
        self.examples = 0

    def __repr__(self) -> str:
        return f"Run(prefix={self.prefix!r}, sent={len(self.sent)}, examples={self.examples})"

    def publish(self, msgs: list[Msg]) -> None:
        published = publish(
            self.stack.bootstrap, [(self.prefix + m.topic, m.key, m.value) for m in msgs]
        )
        self.sent += zip(msgs, published, strict=True)
        wait_applied(self.stack.redis(), last_offsets(p for _, p in self.sent), timeout=120)

    def valid_events(self) -> list[dict[str, Any]]:
        return [m.event for m, _ in self.sent if m.applied and m.event is not None]


class Side:
    """A second worker with a Redis of its own, for the single-case tests below.

    It is given its messages when it starts, so its group join and its work
    overlap the property test.
    """

    def __init__(self, stack: Stack, prefix: str, group: str, now: float) -> None:
        self.stack, self.prefix = stack, prefix
        self.redis_process = start_redis(stack.workdir)
        self.redis_url = f"redis://127.0.0.1:{self.redis_process.port}/0"
        asyncio.run(create_topics(Settings(topic_prefix=prefix, partitions=2), stack.bootstrap))
        self.worker = stack.new_worker(prefix, group, CSPULSE_REDIS_URL=self.redis_url).start()
        self.big = orjson.dumps(
            event_at(
                "survey.answered",
                now - 60,
                "acme",
                "big",
                kind="nps",
                score=9,
                comment="x" * 1_000_000,
            )
        )
        self.before = publish(stack.bootstrap, [(prefix + "surveys", b"acme", b"before")])
        self.shared_user = [
            event_at("session.started", now - 120, "acme", "s1", session_id="S1", user_id="u-x"),
            event_at("session.started", now - 60, "globex", "s2", session_id="S2", user_id="u-x"),
        ]
        self.logins = publish(
            stack.bootstrap,
            [
                (prefix + "logins", e["data"]["account_id"].encode(), orjson.dumps(e))
                for e in self.shared_user
            ],
        )

    def __repr__(self) -> str:
        return f"Side(prefix={self.prefix!r})"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def stop(self) -> None:
        self.worker.kill()
        self.redis_process.stop()


def event_at(
    event_type: str, ts: float, account: str, event_id: str, **data: Any
) -> dict[str, Any]:
    spec = Spec(event_type, {"account_id": account, **data}, 0)
    return build(Draft("valid", spec), int(ts * 1000), event_id).event or {}


def warm_up(now: float) -> list[Msg]:
    """Valid events first on every partition: a year-1970 event must find a stream time.

    With ``clock=watermark`` lateness is judged against the largest event
    time applied in the event's own partition; on a partition with no event
    yet that is 0, so a 1970 event arriving first would not be late.
    """
    msgs = []
    for n, account in enumerate(one_account_per_partition(2)):
        events = [
            event_at("ticket.opened", now - 60, account, f"warm-{n}-1", ticket_id="W1"),
            event_at("survey.answered", now - 60, account, f"warm-{n}-2", kind="nps", score=9),
            event_at(
                "session.started",
                now - 60,
                account,
                f"warm-{n}-3",
                session_id="W1",
                user_id=f"{account}-u1",
            ),
            event_at(
                "cost.recorded",
                now - 60,
                account,
                f"warm-{n}-4",
                amount_cents=100,
                currency="USD",
                category="tooling",
            ),
        ]
        msgs += [
            Msg(topic_of(e["type"]), account.encode(), orjson.dumps(e), event=e) for e in events
        ]
    return msgs


def one_account_per_partition(partitions: int) -> list[str]:
    """Account ids whose keys the producer's default partitioner sends to each partition."""
    found: dict[int, str] = {}
    for n in range(1000):
        account = f"warm{n}"
        found.setdefault((murmur2(account.encode()) & 0x7FFFFFFF) % partitions, account)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError("no key found for every partition")


@pytest.fixture(scope="module")
def workers(stack: Stack) -> Iterator[tuple[Run, Side]]:
    prefix, group = fresh_names(stack)
    now = time.time()
    run = Run(stack, prefix, stack.new_worker(prefix, group).start())
    side = Side(stack, f"side-{prefix}", f"side-{group}", now)
    try:
        run.publish(warm_up(now))
        yield run, side
    finally:
        side.stop()
        run.worker.stop()


def sums(metrics: dict[Any, float], name: str, label: str | None = None) -> Counter[str]:
    out: Counter[str] = Counter()
    for (n, labels), value in metrics.items():
        if n == name:
            out[dict(labels).get(label, "") if label else ""] += int(value)
    return out


def settled_metrics(run: Run, timeout: float = 20) -> dict[Any, float]:
    """Scrape until the process counters account for every message (they follow Redis)."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = scrape(run.worker.port)
        counted = sum(
            sum(sums(metrics, name).values())
            for name in (
                "cs_events_total",
                "cs_events_invalid_total",
                "cs_events_late_total",
                "cs_events_duplicate_total",
            )
        )
        if counted >= len(run.sent) or time.monotonic() > deadline:
            return metrics
        time.sleep(0.2)


def check_books(run: Run) -> None:
    sent = [m for m, _ in run.sent]
    metrics = settled_metrics(run)
    applied = sum(sums(metrics, "cs_events_total").values())
    invalid = sums(metrics, "cs_events_invalid_total", "reason")
    late = sum(sums(metrics, "cs_events_late_total").values())
    dups = sum(sums(metrics, "cs_events_duplicate_total").values())
    want_dead = [(m, p) for m, p in run.sent if m.dead]
    late_applied = sum(m.late for m in sent)
    assert applied == sum(m.applied for m in sent)
    assert dups == sum(m.duplicate for m in sent)
    assert sum(invalid.values()) + late == len(want_dead) + late_applied
    assert applied + sum(invalid.values()) + (late - late_applied) + dups == len(sent)

    records = consume_all(run.stack.bootstrap, run.prefix + "deadletter", len(want_dead))
    assert len(records) == len(want_dead), "one dead letter per rejected message, no more"
    expected = {(p.topic, p.partition, p.offset): m for m, p in want_dead}
    reasons: Counter[str] = Counter()
    seen = set()
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        assert set(DEAD_LETTER_HEADERS) <= set(headers), headers
        source = (
            headers["cs-source-topic"],
            int(headers["cs-source-partition"]),
            int(headers["cs-source-offset"]),
        )
        assert source in expected, f"dead letter for a message that should not be one: {source}"
        msg = expected[source]
        assert record.value == msg.value, f"dead letter {source} must carry the original bytes"
        assert record.key == msg.key, f"dead letter {source} must keep the original key"
        assert headers["cs-reason"] in msg.reasons, (
            f"{source}: reason {headers['cs-reason']!r}, expected one of {sorted(msg.reasons)}; "
            f"value {msg.value[:200]!r}"
        )
        reasons[headers["cs-reason"]] += 1
        seen.add(source)
    assert seen == set(expected)
    assert reasons["too_late"] == late - late_applied
    assert +invalid == reasons - Counter({"too_late": reasons["too_late"]})


def check_business_metrics(port: int, valid: list[dict[str, Any]]) -> None:
    t = max(float(reference.parse_time(e["time"])) for e in valid)
    problems = mismatches(scrape(port), reference.compute(valid, t))
    assert not problems, "\n".join(problems[:40])


@settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.reuse, Phase.generate],  # no shrinking: every example is a worker run
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(
    drafted=st.lists(drafts(), min_size=150, max_size=300),
    huge=st.lists(huge_drafts, min_size=1, max_size=3),
    dups=duplicates,
)
def test_bad_input_is_dead_lettered_and_the_books_balance(
    workers: tuple[Run, Side],
    drafted: list[Draft],
    huge: list[tuple[str, Spec, int]],
    dups: list[tuple[int, int]],
) -> None:
    run, _ = workers
    run.examples += 1
    started = time.monotonic()
    msgs = assemble(drafted, huge, dups, int(time.time() * 1000), f"ex{run.examples}")
    run.publish(msgs)
    applied = time.monotonic()
    assert run.worker.proc is not None and run.worker.proc.poll() is None, (
        "the worker must stay up:\n" + run.worker.tail()
    )
    check_books(run)
    books = time.monotonic()
    check_business_metrics(run.worker.port, run.valid_events())
    counts = Counter(
        "duplicate" if m.duplicate else "applied" if m.applied else "dead-lettered" for m in msgs
    )
    print(
        f"example {run.examples}: {len(msgs)} messages, {dict(counts)}, "
        f"{sum(len(m.value) > 100_000 for m in msgs)} over 100 kB; applied in "
        f"{applied - started:.1f}s, books {books - applied:.1f}s, "
        f"metrics {time.monotonic() - books:.1f}s"
    )


def test_a_one_megabyte_invalid_message_is_dead_lettered(workers: tuple[Run, Side]) -> None:
    _, side = workers
    client = side.redis()
    wait_applied(client, last_offsets(side.before), timeout=120)  # the partition is consumed
    rest = publish(
        side.stack.bootstrap,
        [
            (side.prefix + "surveys", b"acme", side.big),
            (side.prefix + "surveys", b"acme", b"after"),
        ],
    )
    try:
        wait_applied(client, last_offsets(rest), timeout=15)
    finally:
        assert side.worker.proc is not None and side.worker.proc.poll() is None
    records = letters_from(side, rest[0].partition, 3)
    assert [dict(r.headers)["cs-reason"] for r in records] == [
        b"not_json",
        b"bad_type",
        b"not_json",
    ]
    assert records[1].value == side.big


def test_a_five_megabyte_invalid_message_is_dead_lettered_truncated(
    workers: tuple[Run, Side],
) -> None:
    _, side = workers
    client = side.redis()
    topic = side.prefix + "surveys"
    first = publish(side.stack.bootstrap, [(topic, b"globex", b"before")])
    wait_applied(client, last_offsets(first), timeout=120)
    big = b"x" * (5 * 1024 * 1024)  # accepted by a topic whose max.message.bytes allows it
    rest = asyncio.run(publish_large(side.stack.bootstrap, topic, b"globex", [big, b"after"]))
    assert {p.partition for p in rest} == {first[0].partition}
    try:
        wait_applied(client, last_offsets(rest), timeout=15)
    finally:
        assert side.worker.proc is not None and side.worker.proc.poll() is None
    records = letters_from(side, first[0].partition, 3)
    headers = dict(records[1].headers)
    assert headers["cs-truncated-from-bytes"] == str(len(big)).encode()
    assert records[1].value == big[: len(records[1].value)]


async def publish_large(
    bootstrap: str, topic: str, key: bytes, values: list[bytes]
) -> list[Published]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        out = []
        for value in values:
            meta = await (await producer.send(topic, value, key=key))
            out.append(Published(meta.topic, meta.partition, meta.offset, value))
        return out
    finally:
        await producer.stop()


def letters_from(side: Side, partition: int, expected: int) -> list[Any]:
    """The side worker's dead letters from one surveys partition, in offset order."""
    records = consume_all(side.stack.bootstrap, side.prefix + "deadletter", expected)
    source = (side.prefix + "surveys").encode(), str(partition).encode()
    mine = [
        r
        for r in records
        if (dict(r.headers)["cs-source-topic"], dict(r.headers)["cs-source-partition"]) == source
    ]
    return sorted(mine, key=lambda r: int(dict(r.headers)["cs-source-offset"]))


def test_a_user_active_in_two_accounts_counts_once(workers: tuple[Run, Side]) -> None:
    _, side = workers
    assert len({p.partition for p in side.logins}) == 2, "the two accounts share a partition"
    wait_applied(side.redis(), last_offsets(side.logins), timeout=120)
    check_business_metrics(side.worker.port, side.shared_user)
