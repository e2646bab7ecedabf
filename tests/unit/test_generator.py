"""Tests for streams.demo.world: determinism, timing contract, validity, realistic shapes.

The checks below re-state events.md on their own (not via the schemas
package) so the generator is tested against the contract, not against
another implementation of it.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import orjson
import pytest

from streams.demo.world import EventGenerator, GeneratorConfig, Message

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp()  # a Tuesday morning
QUIET_START = datetime(2026, 11, 29, 3, 0, tzinfo=UTC).timestamp()  # Sunday, 3 a.m.
START_MS = round(START * 1000)

TOPIC_TYPES = {
    "tickets": {"ticket.opened", "ticket.replied", "ticket.resolved", "ticket.reopened"},
    "surveys": {"survey.answered"},
    "logins": {"session.started", "session.heartbeat", "session.ended"},
    "billing": {
        "subscription.started",
        "subscription.changed",
        "subscription.renewed",
        "subscription.canceled",
        "trial.converted",
        "trial.expired",
        "invoice.paid",
        "invoice.failed",
        "cost.recorded",
    },
}
SESSION = ("session_id", "user_id")
PLAN = ("subscription_id", "plan", "mrr_cents", "currency")
MONEY = ("amount_cents", "currency")
REQUIRED: dict[str, tuple[str, ...]] = {
    "ticket.opened": ("ticket_id",),
    "ticket.replied": ("ticket_id", "author"),
    "ticket.resolved": ("ticket_id",),
    "ticket.reopened": ("ticket_id",),
    "survey.answered": ("kind", "score"),
    "session.started": SESSION,
    "session.heartbeat": SESSION,
    "session.ended": SESSION,
    "subscription.started": PLAN,
    "subscription.changed": PLAN,
    "trial.converted": PLAN,
    "subscription.renewed": ("subscription_id",),
    "subscription.canceled": ("subscription_id",),
    "trial.expired": ("subscription_id",),
    "invoice.paid": ("invoice_id", *MONEY),
    "invoice.failed": ("invoice_id", *MONEY),
    "cost.recorded": (*MONEY, "category"),
}
INTS = {"mrr_cents", "amount_cents"}
ENUMS = {
    "channel": {"email", "chat", "phone", "web", "social", "other"},
    "author": {"agent", "customer"},
    "platform": {"web", "ios", "android", "desktop", "api", "other"},
    "kind": {"nps", "csat", "ces"},
}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# ------------------------------------------------------------------ helpers


def problem(msg: Message, currency: str = "USD") -> str | None:
    """Why ``msg`` breaks events.md, or None when it is a valid event."""
    try:
        event = orjson.loads(msg.value)
    except orjson.JSONDecodeError:
        return "not_json"
    if not isinstance(event, dict):
        return "not_object"
    return envelope_problem(msg.topic, event) or data_problem(event, currency)


def envelope_problem(topic: str, event: dict[str, Any]) -> str | None:
    """Envelope rules: fields, spec version, type of the topic, RFC 3339 time."""
    if any(f not in event for f in ("specversion", "id", "source", "type", "time", "data")):
        return "missing_field"
    if event["specversion"] != "1.0" or not isinstance(event["data"], dict):
        return "ill_typed"
    if not isinstance(event["id"], str) or not 1 <= len(event["id"]) <= 128:
        return "ill_typed"
    if not isinstance(event["source"], str) or not event["source"]:
        return "ill_typed"
    if event["type"] not in TOPIC_TYPES[topic]:
        return "unknown_type"
    t = event["time"]
    if not isinstance(t, str) or not RFC3339.match(t):
        return "bad_time"
    try:
        datetime.fromisoformat(t)
    except ValueError:
        return "bad_time"
    return None


def data_problem(event: dict[str, Any], currency: str) -> str | None:
    """Data rules: required fields, enums, scales, money."""
    data = event["data"]
    for name in ("account_id", *REQUIRED[event["type"]]):
        value = data.get(name)
        wanted = int if name in INTS else (int, float) if name == "score" else str
        if value is None or isinstance(value, bool) or not isinstance(value, wanted):
            return "missing_field"
        if isinstance(value, str) and not value:
            return "missing_field"
    for name, allowed in ENUMS.items():
        if name in data and data[name] not in allowed:
            return "enum"
    if data.get("author") == "agent" and not data.get("agent_id"):
        return "missing_field"
    if "kind" in data and not on_scale(data):
        return "off_scale"
    if "currency" in data and data["currency"] != currency:
        return "currency"
    if any(data.get(n, 0) < 0 for n in INTS):
        return "negative"
    return None


def on_scale(data: dict[str, Any]) -> bool:
    """Survey score within its scale (nps 0-10, ces 1-7, csat 1..5/7/10)."""
    score: float = data["score"]
    if data["kind"] == "nps":
        return 0 <= score <= 10
    if data["kind"] == "ces":
        return 1 <= score <= 7
    scale = data.get("scale_max", 5)
    return scale in (5, 7, 10) and 1 <= score <= scale


def decode(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Parsed events of valid messages (tests with malformed_share=0 expect all valid)."""
    return [orjson.loads(m.value) for m in messages]


def ms(event: dict[str, Any]) -> int:
    """Event time in integer milliseconds."""
    return round(datetime.fromisoformat(event["time"]).timestamp() * 1000)


def by_type(events: Iterable[dict[str, Any]], etype: str) -> list[dict[str, Any]]:
    """Only events of one type."""
    return [e for e in events if e["type"] == etype]


def paying_accounts(events: Iterable[dict[str, Any]]) -> set[str]:
    """Replay billing (in time order) into the set of accounts with MRR > 0 now."""
    mrr: dict[str, tuple[str, int]] = {}  # subscription -> (account, mrr of a non-trial)
    trials: dict[str, tuple[str, int]] = {}
    for e in sorted(events, key=ms):
        d, kind = e["data"], e["type"]
        sub = d.get("subscription_id", "")
        if kind == "subscription.started":
            (trials if d.get("trial") else mrr)[sub] = (d["account_id"], d["mrr_cents"])
        elif kind in ("subscription.changed", "trial.converted"):
            trials.pop(sub, None)
            mrr[sub] = (d["account_id"], d["mrr_cents"])
        elif kind in ("subscription.canceled", "trial.expired"):
            mrr.pop(sub, None)
            trials.pop(sub, None)
    return {account for account, cents in mrr.values() if cents > 0}


# ----------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Day:
    """Bootstrap plus one simulated day with the default config, raw and decoded."""

    boot: list[Message]
    messages: list[Message]
    boot_events: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @property
    def all_events(self) -> list[dict[str, Any]]:
        """Bootstrap and day events in time order."""
        return self.boot_events + self.events


@pytest.fixture(scope="module")
def day() -> Day:
    """Built once per module: about a second to generate and decode."""
    gen = EventGenerator(GeneratorConfig(), START)
    boot, messages = gen.bootstrap(), gen.advance(START + 86_400)
    return Day(boot, messages, decode(boot), decode(messages))


# -------------------------------------------------------------------- tests


def test_same_seed_and_start_give_the_same_bytes() -> None:
    """Replays and benchmarks must be repeatable."""
    cfg = GeneratorConfig(accounts=50, malformed_share=0.1)
    a, b = EventGenerator(cfg, START), EventGenerator(cfg, START)
    assert a.bootstrap() == b.bootstrap()
    assert a.advance(START + 1800) == b.advance(START + 1800)
    other = EventGenerator(GeneratorConfig(accounts=50, seed=2), START)
    assert other.bootstrap() != a.bootstrap()


def test_a_later_start_never_reuses_event_ids() -> None:
    """A restarted demo must not look like duplicates to cspulse's dedup."""
    cfg = GeneratorConfig(accounts=50)
    first = EventGenerator(cfg, START)
    second = EventGenerator(cfg, START + 3600)
    ids_a = {e["id"] for e in decode(first.bootstrap() + first.advance(START + 3600))}
    ids_b = {e["id"] for e in decode(second.bootstrap() + second.advance(START + 7200))}
    assert not ids_a & ids_b


def test_advance_returns_exactly_the_window_in_time_order() -> None:
    """(previous until, until], sorted: the CLI relies on it when it polls every 0.2 s."""
    gen = EventGenerator(GeneratorConfig(accounts=100), START)
    prev_ms, until, total = START_MS, START, 0
    for step in [0.2] * 50 + [0.0] + [5.0] * 20 + [60.0] * 30:
        until += step
        until_ms = round(until * 1000)
        times = [ms(e) for e in decode(gen.advance(until))]
        assert times == sorted(times)
        assert all(prev_ms < t <= until_ms for t in times)
        prev_ms, total = max(prev_ms, until_ms), total + len(times)
    assert total > 100
    assert gen.advance(until - 10) == []


@pytest.mark.parametrize("start", [START, QUIET_START], ids=["weekday", "sunday-night"])
def test_bootstrap_has_mrr_sessions_and_tickets_within_the_last_hour(start: float) -> None:
    """A demo shows MRR, live sessions and a backlog from its first minute, at any hour."""
    start_ms = round(start * 1000)
    events = decode(EventGenerator(GeneratorConfig(), start).bootstrap())
    times = [ms(e) for e in events]
    assert times == sorted(times)
    assert all(start_ms - 3_600_000 <= t <= start_ms for t in times)
    paid = [e for e in by_type(events, "subscription.started") if not e["data"]["trial"]]
    assert paid and paying_accounts(events)
    assert sum(e["data"]["mrr_cents"] for e in paid) > 0
    ended = {e["data"]["session_id"] for e in by_type(events, "session.ended")}
    last_seen = {e["data"]["session_id"]: ms(e) for e in events if e["type"].startswith("sess")}
    live = [s for s, t in last_seen.items() if s not in ended and start_ms - t < 1_800_000]
    assert len(live) >= 5
    resolved = {e["data"]["ticket_id"] for e in by_type(events, "ticket.resolved")}
    opened = {e["data"]["ticket_id"] for e in by_type(events, "ticket.opened")}
    assert len(opened - resolved) >= 2


def test_every_message_is_valid_and_keyed_by_account(day: Day) -> None:
    """With malformed_share=0 every message passes the contract, with the account as key."""
    messages = day.boot + day.messages
    assert all(problem(m) is None for m in messages)
    events = day.all_events
    pairs = list(zip(messages, events, strict=True))
    assert all(m.key == e["data"]["account_id"].encode() for m, e in pairs)
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 for i in ids[:1000])
    sources = {m.topic: e["source"] for m, e in pairs}
    assert sources == {
        "tickets": "helpdesk",
        "surveys": "survey-tool",
        "logins": "product",
        "billing": "billing",
    }
    assert all(e["time"].endswith("Z") and len(e["time"]) == 24 for e in events)


def test_a_day_contains_every_event_type_on_its_topic(day: Day) -> None:
    """Every type of events.md shows up, each on its own topic."""
    seen: dict[str, set[str]] = defaultdict(set)
    for m, e in zip(day.messages, day.events, strict=True):
        seen[m.topic].add(e["type"])
    assert seen == TOPIC_TYPES


def test_rate_follows_the_daily_cycle(day: Day) -> None:
    """0.5-1.5 events/s per 100 accounts at a busy hour, fewer but some at night."""
    hours = Counter(ms(e) // 3_600_000 for e in day.events)
    busy = hours[(START_MS + 4 * 3_600_000) // 3_600_000]  # 13:00 UTC
    night = hours[(START_MS + 18 * 3_600_000) // 3_600_000]  # 03:00 UTC
    per_100_accounts = busy / 3600 / 2
    assert 0.5 <= per_100_accounts <= 1.5
    assert 0 < night < busy / 2


def test_sessions_share_ids_and_beat_every_minute(day: Day) -> None:
    """One user per session, heartbeats ~60 s apart, most but not all sessions end."""
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in day.all_events:
        if e["type"].startswith("session."):
            sessions[e["data"]["session_id"]].append(e)
    ended = 0
    for events in sessions.values():
        assert events[0]["type"] == "session.started"
        assert len({(e["data"]["user_id"], e["data"]["account_id"]) for e in events}) == 1
        beats = [ms(e) for e in events if e["type"] == "session.heartbeat"]
        assert all(59_000 <= b - a <= 61_000 for a, b in pairwise(beats))
        ended += events[-1]["type"] == "session.ended"
    assert 0.6 < ended / len(sessions) < 0.99
    platforms = Counter(e[0]["data"]["platform"] for e in sessions.values())
    assert set(platforms) == ENUMS["platform"]


def test_tickets_are_mostly_first_contact_with_some_reopens(day: Day) -> None:
    """~70 % resolved after one agent reply, ~8 % reopened; replies follow the opening."""
    tickets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in day.events:
        if e["type"].startswith("ticket."):
            tickets[e["data"]["ticket_id"]].append(e)
    resolved = fcr = reopened = 0
    for events in tickets.values():
        types = [e["type"] for e in events]
        if types[0] != "ticket.opened" or "ticket.resolved" not in types:
            continue
        resolved += 1
        first = types.index("ticket.resolved")
        agent_replies = sum(e["data"].get("author") == "agent" for e in events[:first])
        fcr += agent_replies == 1 and "ticket.reopened" not in types
        reopened += "ticket.reopened" in types
    assert resolved > 100
    assert 0.55 < fcr / resolved < 0.8
    assert 0.02 < reopened / resolved < 0.16
    channels = Counter(e["data"]["channel"] for e in by_type(day.events, "ticket.opened"))
    assert set(channels) == ENUMS["channel"]


def test_surveys_look_like_real_answers(day: Day) -> None:
    """NPS skewed to promoters, CSAT on several scales, half with comments, a few foreign."""
    answers = [e["data"] for e in by_type(day.events, "survey.answered")]
    kinds = Counter(a["kind"] for a in answers)
    assert set(kinds) == {"nps", "csat", "ces"}
    nps = [a["score"] for a in answers if a["kind"] == "nps"]
    promoters, detractors = sum(s >= 9 for s in nps), sum(s <= 6 for s in nps)
    assert promoters > detractors > 0
    assert {a.get("scale_max", 5) for a in answers if a["kind"] == "csat"} == {5, 7, 10}
    assert any(a.get("ticket_id") for a in answers if a["kind"] == "csat")
    comments = [a["comment"] for a in answers if "comment" in a]
    assert 0.35 < len(comments) / len(answers) < 0.65
    assert any(not c.isascii() for c in comments)


def test_billing_has_trials_renewals_and_reactivations(day: Day) -> None:
    """Cancellations mostly at term end; some accounts come back on a new subscription."""
    events = day.all_events
    cancels = [e["data"] for e in by_type(events, "subscription.canceled")]
    assert sum(c["at_term_end"] for c in cancels) > len(cancels) / 2
    starts = Counter(e["data"]["account_id"] for e in by_type(events, "subscription.started"))
    assert any(n > 1 for n in starts.values())  # reactivation: a second subscription
    assert all(
        e["data"]["category"] in {"payroll", "tooling", "training"}
        for e in by_type(events, "cost.recorded")
    )


def burst_share(scenario: str) -> float:
    """Share of accounts paying at start+120 s that cancel within the next ~5 minutes."""
    gen = EventGenerator(GeneratorConfig(scenario=scenario), START)
    before = decode(gen.bootstrap() + gen.advance(START + 120))
    burst = decode(gen.advance(START + 120 + 330))
    paying = paying_accounts(before)
    churned = {e["data"]["account_id"] for e in by_type(burst, "subscription.canceled")}
    return len(churned & paying) / len(paying)


def test_churn_spike_cancels_a_third_of_paying_accounts_at_once() -> None:
    """The scenario the ChurnSpike alert is demoed with; normal stays calm."""
    assert burst_share("churn-spike") >= 0.30
    assert burst_share("normal") < 0.05
    gen = EventGenerator(GeneratorConfig(scenario="churn-spike"), START)
    gen.advance(START + 120)
    cancels = by_type(decode(gen.advance(START + 450)), "subscription.canceled")
    assert sum(not e["data"]["at_term_end"] for e in cancels) >= 0.9 * len(cancels)


def test_churn_spike_is_normal_for_the_first_two_minutes() -> None:
    """Same world until the burst, so the spike stands out against a normal baseline."""
    normal = EventGenerator(GeneratorConfig(), START)
    spike = EventGenerator(GeneratorConfig(scenario="churn-spike"), START)
    assert normal.bootstrap() == spike.bootstrap()
    assert normal.advance(START + 119) == spike.advance(START + 119)


def test_malformed_share_gives_that_share_of_invalid_messages() -> None:
    """About 20 % invalid, of every kind, on the right topic; the valid world is unchanged."""
    cfg = GeneratorConfig(malformed_share=0.2)
    bad_gen, good_gen = EventGenerator(cfg, START), EventGenerator(GeneratorConfig(), START)
    messages, clean = bad_gen.advance(START + 4 * 3600), good_gen.advance(START + 4 * 3600)
    reasons = Counter(problem(m) for m in messages)
    share = 1 - reasons.pop(None) / len(messages)
    assert 0.15 <= share <= 0.25
    assert set(reasons) == {
        "not_json",
        "not_object",
        "missing_field",
        "unknown_type",
        "bad_time",
        "off_scale",
        "currency",
    }
    assert len(messages) == len(clean)
    for bad, good in zip(messages, clean, strict=True):
        assert bad.topic == good.topic and bad.key == good.key
        assert bad == good or problem(bad) is not None


def test_stream_yields_exactly_count_and_keeps_the_rest() -> None:
    """Benchmarks ask for N messages; nothing is lost or repeated between calls."""
    gen = EventGenerator(GeneratorConfig(accounts=100), START)
    first = list(gen.stream(1000, step=5.0))
    second = list(gen.stream(500))
    rest = gen.advance(START + 3 * 3600)
    assert len(first) == 1000 and len(second) == 500
    events = decode(first + second + rest)
    assert len({e["id"] for e in events}) == len(events)
    times = [ms(e) for e in events]
    assert times == sorted(times)
    reference = EventGenerator(GeneratorConfig(accounts=100), START).advance(START + 3 * 3600)
    assert first + second + rest == reference


def test_intensity_scales_usage() -> None:
    """intensity=2 roughly doubles product usage."""

    def sessions(intensity: float) -> int:
        gen = EventGenerator(GeneratorConfig(accounts=100), START, intensity=intensity)
        return len(by_type(decode(gen.advance(START + 3600)), "session.started"))

    assert 1.6 < sessions(2.0) / sessions(1.0) < 2.4


def test_currency_and_plans_come_from_the_config() -> None:
    """Every money field uses the reporting currency; MRR values are the plans' prices."""
    cfg = GeneratorConfig(accounts=50, currency="EUR", plans=(("solo", 1000), ("duo", 3000)))
    gen = EventGenerator(cfg, START)
    messages = gen.bootstrap() + gen.advance(START + 6 * 3600)
    assert all(problem(m, currency="EUR") is None for m in messages)
    prices = {
        e["data"]["plan"]: e["data"]["mrr_cents"]
        for e in decode(messages)
        if "mrr_cents" in e["data"]
    }
    assert prices == {"solo": 1000, "duo": 3000}


@pytest.mark.parametrize(
    "bad",
    [
        {"accounts": 0},
        {"users_per_account": 0},
        {"malformed_share": 1.5},
        {"scenario": "meltdown"},
        {"plans": ()},
        {"plans": (("x", -1),)},
        {"currency": ""},
    ],
)
def test_invalid_config_is_rejected(bad: dict[str, Any]) -> None:
    """Fail at construction rather than producing an empty or invalid world."""
    with pytest.raises(ValueError):
        EventGenerator(GeneratorConfig(**bad), START)
    with pytest.raises(ValueError):
        EventGenerator(GeneratorConfig(), START, intensity=0)


# ------------------------------------------------------------------ history


@dataclass(frozen=True)
class History:
    events: list[dict[str, Any]]
    live: list[dict[str, Any]]


@pytest.fixture(scope="module")
def history() -> History:
    """30 days of history for 200 accounts, then the first live minute."""
    gen = EventGenerator(GeneratorConfig(accounts=200, history_days=30), START, intensity=5.0)
    chunks = list(gen.catch_up())
    assert len(chunks) > 100  # published in pieces, not one month-long list
    return History(decode(m for c in chunks for m in c), decode(gen.advance(START + 60)))


def days_before_start(event: dict[str, Any]) -> int:
    return (START_MS - ms(event)) // 86_400_000


def test_history_fills_the_30d_window_after_a_running_base(history: History) -> None:
    times = [ms(e) for e in history.events]
    assert times == sorted(times)
    assert max(times) <= START_MS
    # START is on the hour: the 30d window's oldest hourly bucket starts 719 h before it
    window_start = START_MS - 719 * 3_600_000
    base = [e for e in history.events if ms(e) < window_start]
    assert {e["type"] for e in base} == {"subscription.started"}
    assert all(ms(e) >= window_start - 3_600_000 for e in base)  # kept, but in no window
    assert 70 <= len(paying_accounts(base)) <= 110  # about 45 % of 200 accounts
    assert min(ms(e) for e in history.events if e not in base) < window_start + 3_600_000
    assert all(START_MS < ms(e) <= START_MS + 60_000 for e in history.live)
    ids = [e["id"] for e in history.events + history.live]
    assert len(ids) == len(set(ids))


def test_history_has_weekly_and_daily_cycles(history: History) -> None:
    sessions = by_type(history.events, "session.started")
    weekday = Counter(datetime.fromtimestamp(ms(e) / 1000, UTC).weekday() for e in sessions)
    weekend_mean = (weekday[5] + weekday[6]) / 2
    midweek_mean = sum(weekday[d] for d in range(5)) / 5
    assert weekend_mean < 0.6 * midweek_mean, weekday
    hour = Counter(datetime.fromtimestamp(ms(e) / 1000, UTC).hour for e in sessions)
    assert hour[13] > 2.5 * hour[2], hour


def test_history_grows_the_base_with_a_churn_wave(history: History) -> None:
    events = history.events
    month_ago = [e for e in events if days_before_start(e) >= 27]
    assert len(paying_accounts(events)) > 1.15 * len(paying_accounts(month_ago))
    cancels = Counter(days_before_start(e) for e in by_type(events, "subscription.canceled"))
    wave = cancels[10] + cancels[11]
    assert wave >= 5 and wave > 4 * (sum(cancels.values()) - wave) / 28, cancels


def test_history_is_quieter_per_account_than_live_but_not_empty(history: History) -> None:
    per_type = Counter(e["type"] for e in history.events)
    for etype in ("ticket.opened", "survey.answered", "subscription.renewed", "trial.converted"):
        assert per_type[etype] > 0, etype
    # heartbeats every 5 minutes in the history keep a month to a few events per session
    assert per_type["session.heartbeat"] < 6 * per_type["session.started"]


def test_history_days_are_validated() -> None:
    with pytest.raises(ValueError, match="history_days"):
        EventGenerator(GeneratorConfig(history_days=0.5), START)


def live_and_history_rates(intensity: float) -> tuple[float, float]:
    """(sessions started in the first live day / the same weekday a week before,
    billing events in the first live day / their mean per day over the history's last week)."""
    gen = EventGenerator(GeneratorConfig(accounts=200, history_days=8), START, intensity)
    past = decode(m for chunk in gen.catch_up() for m in chunk)
    live = decode(gen.advance(START + 86_400))
    week_ago = [e for e in past if START_MS - 7 * 86_400_000 <= ms(e) < START_MS - 6 * 86_400_000]
    sessions = len(by_type(live, "session.started")) / len(by_type(week_ago, "session.started"))
    billing = [e for e in past if e["type"] in BILLING_TYPES and days_before_start(e) < 7]
    live_billing = [e for e in live if e["type"] in BILLING_TYPES]
    return sessions, len(live_billing) / (len(billing) / 7)


BILLING_TYPES = {
    "subscription.started", "subscription.changed", "subscription.renewed",
    "subscription.canceled", "trial.converted", "trial.expired", "invoice.paid", "invoice.failed",
}  # fmt: skip


def test_live_traffic_continues_the_history_at_the_default_rate() -> None:
    from streams.cli import run
    from streams.demo.world import HISTORY_ACTIVITY

    default_rate = inspect.signature(run).parameters["rate"].default
    assert default_rate == HISTORY_ACTIVITY
    sessions, billing = live_and_history_rates(default_rate)
    assert 0.75 <= sessions <= 1.33, sessions  # same weekday, same hours: no cliff
    assert 0.5 <= billing <= 2.0, billing  # real-time terms and signups go on live
    # what the demo did before: usage at 5 against a history made at 0.3
    assert live_and_history_rates(5.0)[0] > 8


def test_history_publishes_the_running_base_first() -> None:
    """The first chunk holds only the subscriptions running when the history begins,
    so a worker can know every account's plan before its first ticket or session."""
    gen = EventGenerator(GeneratorConfig(accounts=50, history_days=2), START)
    first = decode(next(iter(gen.catch_up())))
    assert first and {e["type"] for e in first} == {"subscription.started"}
