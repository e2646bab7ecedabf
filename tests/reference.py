"""Reference implementation of the cspulse metric contract, for tests only.

A plain batch computation over a list of events, written from the event and
metric specs and ``docs/decisions.md`` alone. It deliberately imports nothing
from ``schemas``, ``aggregators`` or ``streams``: integration tests compare
cspulse's ``/metrics`` with this module, so the two must be independent.
Clarity beats speed here (inputs are a few thousand events).

Times are exact :class:`fractions.Fraction` Unix seconds so that bucket
boundaries never depend on float rounding.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

DEFAULT_WINDOWS: dict[str, int] = {"1h": 3600, "1d": 86400, "7d": 604800, "30d": 2592000}
DEFAULT_GRANULARITY: dict[str, int] = {"1h": 60, "1d": 300, "7d": 3600, "30d": 3600}
DEFAULT_CSAT_THRESHOLDS: dict[int, float] = {5: 4, 7: 6, 10: 8}

MetricKey = tuple[str, tuple[tuple[str, str], ...]]
Metrics = dict[MetricKey, float]


@dataclass(frozen=True)
class RefConfig:
    """The settings the metric definitions depend on (defaults as in the spec)."""

    windows: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    granularity: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GRANULARITY))
    idle_timeout: float = 1800.0
    csat_thresholds: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_CSAT_THRESHOLDS))
    gross_margin: float = 1.0
    currency: str = "USD"


DEFAULT_CONFIG = RefConfig()


# --------------------------------------------------------------------------- basics


@dataclass(frozen=True)
class Event:
    """An admitted event: exact event time plus arrival position (for tie-breaks)."""

    seq: int
    type: str
    ts: Fraction
    data: Mapping[str, Any]

    @property
    def account(self) -> str:
        """Every type carries ``account_id``; entities are scoped by it."""
        return str(self.data["account_id"])

    def field(self, name: str) -> str:
        """A string-valued data field (ids, kinds), read uniformly."""
        return str(self.data[name])


@dataclass(frozen=True)
class Window:
    """One configured window: bucket membership is what the spec counts, not raw time."""

    name: str
    size: int
    granularity: int

    def contains(self, ts: Fraction | None, t: Fraction) -> bool:
        """Spec rule: bucket k is in the window iff floor(t/g) - W/g < k <= floor(t/g).

        A missing time (e.g. a ticket never resolved) is in no window.
        """
        if ts is None:
            return False
        now = math.floor(t / self.granularity)
        k = math.floor(ts / self.granularity)
        return now - Fraction(self.size, self.granularity) < k <= now


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(text: str) -> Fraction:
    """RFC 3339 to exact Unix seconds; any number of fraction digits is kept exactly."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time with offset: {text!r}")
    date, clock, fraction, offset = match.groups()
    whole = datetime.fromisoformat(f"{date}T{clock}+00:00")
    seconds = Fraction((whole - _EPOCH) // timedelta(seconds=1))
    if fraction:
        seconds += Fraction(int(fraction), 10 ** len(fraction))
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds


def key(name: str, **labels: str) -> MetricKey:
    """Metric key with labels sorted by name, as the interface promises."""
    return name, tuple(sorted(labels.items()))


def ratio(numerator: Fraction | int, denominator: Fraction | int) -> float | None:
    """Ratios and averages without data are absent (None), never NaN or 0."""
    if denominator == 0:
        return None
    return float(Fraction(numerator) / Fraction(denominator))


def put(out: Metrics, metric: MetricKey, value: float | None) -> None:
    """Store a value unless it is absent."""
    if value is not None:
        out[metric] = value


def windows_of(config: RefConfig) -> list[Window]:
    """The configured windows, in configuration order."""
    return [Window(n, s, config.granularity[n]) for n, s in config.windows.items()]


def major(cents: int | Fraction) -> float:
    """Money is exported in major units (cents / 100)."""
    return float(Fraction(cents) / 100)


# --------------------------------------------------------------------------- admission


def is_too_late(ts: Fraction, t: Fraction, config: RefConfig) -> bool:
    """decisions.md: too late when floor(ts/G) < floor(t/G) - Wmax/G (longest window's G)."""
    longest = max(config.windows, key=lambda n: (config.windows[n], config.granularity[n]))
    g = config.granularity[longest]
    return math.floor(ts / g) < math.floor(t / g) - Fraction(config.windows[longest], g)


STATEFUL_PREFIXES = ("ticket.", "subscription.", "trial.")
"""Event types that change current state (a ticket, a subscription): metrics.md "Lateness"."""


def admit(events: Sequence[Mapping[str, Any]], t: Fraction, config: RefConfig) -> list[Event]:
    """Drop duplicate ids (first occurrence wins), then too-late events that change no
    state; keep arrival order.

    Dedup runs first so that a repeated id never counts, whatever its content or time.
    A too-late ticket or subscription event is kept: its change to current state
    counts, while its windowed amounts fall outside every window at ``t`` anyway.
    """
    seen: set[str] = set()
    admitted: list[Event] = []
    for seq, raw in enumerate(events):
        event_id = str(raw["id"])
        if event_id in seen:
            continue
        seen.add(event_id)
        ts = parse_time(str(raw["time"]))
        kind = str(raw["type"])
        if kind.startswith(STATEFUL_PREFIXES) or not is_too_late(ts, t, config):
            admitted.append(Event(seq, kind, ts, raw["data"]))
    return admitted


def of_types(events: Iterable[Event], *types: str) -> list[Event]:
    """Events of the given types, order preserved."""
    return [e for e in events if e.type in types]


def count_in(times: Iterable[Fraction], window: Window, t: Fraction) -> int:
    """How many of these event times fall in the window."""
    return sum(1 for ts in times if window.contains(ts, t))


# --------------------------------------------------------------------------- support


@dataclass
class Ticket:
    """Event times of one ticket, by kind; order-independent by construction."""

    opened: list[Fraction] = field(default_factory=list)
    resolved: list[Fraction] = field(default_factory=list)
    reopened: list[Fraction] = field(default_factory=list)
    agent_replies: list[Fraction] = field(default_factory=list)

    @property
    def opened_at(self) -> Fraction | None:
        """decisions.md: the opened time is the earliest ``ticket.opened``."""
        return min(self.opened, default=None)

    @property
    def first_resolution(self) -> Fraction | None:
        """decisions.md: the earliest ``ticket.resolved``."""
        return min(self.resolved, default=None)

    @property
    def first_agent_reply(self) -> Fraction | None:
        """decisions.md: the earliest agent reply."""
        return min(self.agent_replies, default=None)

    def first_contact_resolved(self) -> bool:
        """Exactly one agent reply strictly before the first resolution, never reopened."""
        done = self.first_resolution
        if done is None or self.reopened:
            return False
        return sum(1 for ts in self.agent_replies if ts < done) == 1

    def is_open(self) -> bool:
        """Backlog: latest of opened/reopened/resolved is not a resolution (tie: resolved)."""
        marks = [(ts, 0) for ts in self.opened + self.reopened]
        marks += [(ts, 1) for ts in self.resolved]
        return bool(marks) and max(marks)[1] == 0


def collect_tickets(events: Iterable[Event]) -> dict[tuple[str, str], Ticket]:
    """Group ticket events by (account, ticket_id)."""
    tickets: dict[tuple[str, str], Ticket] = defaultdict(Ticket)
    for e in events:
        if not e.type.startswith("ticket."):
            continue
        ticket = tickets[(e.account, e.field("ticket_id"))]
        if e.type == "ticket.opened":
            ticket.opened.append(e.ts)
        elif e.type == "ticket.resolved":
            ticket.resolved.append(e.ts)
        elif e.type == "ticket.reopened":
            ticket.reopened.append(e.ts)
        elif e.data.get("author") == "agent":
            ticket.agent_replies.append(e.ts)
    return tickets


def mean_duration(pairs: list[tuple[Fraction, Fraction]]) -> float | None:
    """Mean of (end - start) with negatives clamped to 0 (decisions.md); absent if empty."""
    total = sum((max(Fraction(0), end - start) for start, end in pairs), Fraction(0))
    return ratio(total, len(pairs))


def support_window(tickets: list[Ticket], w: Window, t: Fraction) -> Metrics:
    """Windowed support metrics; each ticket is counted at its first occurrence."""
    label = {"window": w.name}
    opened = [tk for tk in tickets if w.contains(tk.opened_at, t)]
    resolved = [tk for tk in tickets if w.contains(tk.first_resolution, t)]
    responded = [tk for tk in tickets if w.contains(tk.first_agent_reply, t)]
    out: Metrics = {
        key("cs_tickets_opened", **label): float(len(opened)),
        key("cs_tickets_resolved", **label): float(len(resolved)),
    }
    fcr = sum(1 for tk in resolved if tk.first_contact_resolved())
    put(out, key("cs_fcr_ratio", **label), ratio(fcr, len(resolved)))
    first_response = [(tk.opened_at, tk.first_agent_reply) for tk in responded]
    put(out, key("cs_first_response_seconds_avg", **label), mean_duration(_known(first_response)))
    resolution = [(tk.opened_at, tk.first_resolution) for tk in resolved]
    put(out, key("cs_resolution_seconds_avg", **label), mean_duration(_known(resolution)))
    out.update(gauge_histogram("cs_first_response_seconds", _known(first_response), w.name))
    out.update(gauge_histogram("cs_resolution_seconds", _known(resolution), w.name))
    return out


LE_SECONDS = (60, 300, 900, 1800, 3600, 14400, 28800, 86400, 259200)
"""metrics.md: the ``le`` list of the response-time histograms, before +Inf."""


def gauge_histogram(name: str, pairs: list[tuple[Fraction, Fraction]], window: str) -> Metrics:
    """Cumulative buckets (duration <= le), count and sum of (end - start) clamped at 0.

    Always present, like the counts: an empty window has zero in every bucket.
    """
    durations = [max(Fraction(0), end - start) for start, end in pairs]
    out: Metrics = {}
    for le in LE_SECONDS:
        inside = sum(1 for d in durations if d <= le)
        out[key(f"{name}_bucket", le=f"{float(le)}", window=window)] = float(inside)
    out[key(f"{name}_bucket", le="+Inf", window=window)] = float(len(durations))
    out[key(f"{name}_gcount", window=window)] = float(len(durations))
    out[key(f"{name}_gsum", window=window)] = float(sum(durations, Fraction(0)))
    return out


def _known(
    pairs: Iterable[tuple[Fraction | None, Fraction | None]],
) -> list[tuple[Fraction, Fraction]]:
    """Durations need both ends: a ticket whose opening never arrived is left out."""
    return [(a, b) for a, b in pairs if a is not None and b is not None]


def support_metrics(events: list[Event], t: Fraction, config: RefConfig) -> Metrics:
    """All support metrics: windowed ones plus the current backlog."""
    tickets = list(collect_tickets(events).values())
    out: Metrics = {key("cs_tickets_open"): float(sum(tk.is_open() for tk in tickets))}
    for w in windows_of(config):
        out.update(support_window(tickets, w, t))
    return out


# --------------------------------------------------------------------------- surveys


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    """VADER loads its lexicon once; it is bundled with the package (no download)."""
    return SentimentIntensityAnalyzer()


def sentiment(comment: str) -> str:
    """VADER compound score: >= 0.05 positive, <= -0.05 negative, else neutral."""
    compound = float(_analyzer().polarity_scores(comment)["compound"])
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def nps(scores: list[float]) -> float | None:
    """Bain NPS: 100 x (promoters 9-10 - detractors 0-6) / responses."""
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return ratio(100 * (promoters - detractors), len(scores))


def csat(answers: list[Event], config: RefConfig) -> float | None:
    """Share of csat answers at or above their scale's threshold (scale_max default 5)."""
    satisfied = 0
    for e in answers:
        scale = int(e.data.get("scale_max", 5))
        if e.data["score"] >= config.csat_thresholds[scale]:
            satisfied += 1
    return ratio(satisfied, len(answers))


def comment_counts(answers: list[Event]) -> dict[str, int]:
    """Comments by sentiment; a missing or blank comment is no feedback."""
    counts: dict[str, int] = defaultdict(int)
    for e in answers:
        comment = e.data.get("comment")
        if isinstance(comment, str) and comment.strip():
            counts[sentiment(comment)] += 1
    return counts


def survey_window(answers: list[Event], w: Window, t: Fraction, config: RefConfig) -> Metrics:
    """Windowed survey metrics; counts only where > 0, scores only with responses."""
    inside = [e for e in answers if w.contains(e.ts, t)]
    by_kind: dict[str, list[Event]] = defaultdict(list)
    for e in inside:
        by_kind[e.field("kind")].append(e)
    out: Metrics = {}
    for kind, group in by_kind.items():
        out[key("cs_survey_responses", kind=kind, window=w.name)] = float(len(group))
    put(out, key("cs_nps", window=w.name), nps([e.data["score"] for e in by_kind["nps"]]))
    put(out, key("cs_csat_ratio", window=w.name), csat(by_kind["csat"], config))
    ces_total = sum((Fraction(e.data["score"]) for e in by_kind["ces"]), Fraction(0))
    put(out, key("cs_ces_avg", window=w.name), ratio(ces_total, len(by_kind["ces"])))
    for label, n in comment_counts(inside).items():
        out[key("cs_feedback_comments", sentiment=label, window=w.name)] = float(n)
    return out


def survey_metrics(events: list[Event], t: Fraction, config: RefConfig) -> Metrics:
    """All voice-of-the-customer metrics."""
    answers = of_types(events, "survey.answered")
    out: Metrics = {}
    for w in windows_of(config):
        out.update(survey_window(answers, w, t, config))
    return out


# --------------------------------------------------------------------------- usage

SESSION_TYPES = ("session.started", "session.heartbeat", "session.ended")


def session_gaps(sessions: Iterable[list[Event]], idle: float) -> list[tuple[Fraction, Fraction]]:
    """(time of later event, counted seconds) for every consecutive pair of each session.

    Sorting by time places out-of-order events where their time puts them; a gap
    longer than the idle timeout counts 0, exactly the timeout counts in full.
    """
    gaps: list[tuple[Fraction, Fraction]] = []
    for session in sessions:
        times = sorted(e.ts for e in session)
        for earlier, later in itertools.pairwise(times):
            gap = later - earlier
            gaps.append((later, gap if gap <= Fraction(idle) else Fraction(0)))
    return gaps


def group_sessions(events: list[Event]) -> dict[tuple[str, str], list[Event]]:
    """Session events grouped by (account, session_id)."""
    sessions: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for e in events:
        sessions[(e.account, e.field("session_id"))].append(e)
    return sessions


def sessions_active(sessions: Iterable[list[Event]], t: Fraction, idle: float) -> int:
    """Not ended, and latest event L with t - idle < L (strictly within the timeout)."""
    ended = "session.ended"
    return sum(
        1 for s in sessions if all(e.type != ended for e in s) and t - Fraction(idle) < last(s)
    )


def last(session: list[Event]) -> Fraction:
    """Time of a session's latest event."""
    return max(e.ts for e in session)


def distinct_in(events: list[Event], name: str, w: Window, t: Fraction) -> int:
    """Distinct values of a field over the events in the window (exact, no HLL)."""
    return len({e.field(name) for e in events if w.contains(e.ts, t)})


def usage_window(
    events: list[Event],
    gaps: list[tuple[Fraction, Fraction]],
    w: Window,
    t: Fraction,
    paying: set[str],
) -> Metrics:
    """Windowed usage metrics; time per user and usage ratio absent without a denominator.

    Usage ratio: paying accounts active in the window / paying accounts now (metrics.md).
    """
    label = {"window": w.name}
    users = distinct_in(events, "user_id", w, t)
    accounts = distinct_in(events, "account_id", w, t)
    active_paying = len({e.account for e in events if w.contains(e.ts, t)} & paying)
    seconds = sum((gap for later, gap in gaps if w.contains(later, t)), Fraction(0))
    started = [e.ts for e in events if e.type == "session.started"]
    out: Metrics = {
        key("cs_active_users", **label): float(users),
        key("cs_active_accounts", **label): float(accounts),
        key("cs_sessions", **label): float(count_in(started, w, t)),
        key("cs_time_in_app_seconds", **label): float(seconds),
    }
    put(out, key("cs_time_in_app_seconds_per_user", **label), ratio(seconds, users))
    put(out, key("cs_product_usage_ratio", **label), ratio(active_paying, len(paying)))
    return out


def usage_metrics(events: list[Event], t: Fraction, config: RefConfig, paying: set[str]) -> Metrics:
    """All product-usage metrics; ``paying`` is the accounts paying now (from billing)."""
    session_events = of_types(events, *SESSION_TYPES)
    sessions = group_sessions(session_events)
    gaps = session_gaps(sessions.values(), config.idle_timeout)
    out: Metrics = {
        key("cs_sessions_active"): float(sessions_active(sessions.values(), t, config.idle_timeout))
    }
    for w in windows_of(config):
        out.update(usage_window(session_events, gaps, w, t, paying))
    day, month = key("cs_active_users", window="1d"), key("cs_active_users", window="30d")
    if day in out and month in out:
        put(out, key("cs_stickiness_ratio"), ratio(Fraction(out[day]), Fraction(out[month])))
    return out


# --------------------------------------------------------------------------- revenue

SUBSCRIPTION_TYPES = (
    "subscription.started",
    "subscription.changed",
    "subscription.renewed",
    "subscription.canceled",
    "trial.converted",
    "trial.expired",
)
MOVEMENT_KINDS = ("new", "reactivation", "expansion", "contraction", "churned")


@dataclass
class Subscription:
    """State of one subscription; only active non-trial ones contribute MRR."""

    active: bool = False
    trial: bool = False
    mrr_cents: int = 0

    def contribution(self) -> int:
        """MRR this subscription adds to its account now."""
        return self.mrr_cents if self.active and not self.trial else 0

    def apply(self, e: Event) -> None:
        """State transition of decisions.md; a renewal changes nothing."""
        if e.type == "subscription.started":
            self.active, self.trial = True, bool(e.data.get("trial", False))
            self.mrr_cents = int(e.data["mrr_cents"])
        elif e.type == "subscription.changed":
            self.active, self.mrr_cents = True, int(e.data["mrr_cents"])
        elif e.type == "trial.converted":
            self.active, self.trial = True, False
            self.mrr_cents = int(e.data["mrr_cents"])
        elif e.type in ("subscription.canceled", "trial.expired"):
            self.active = False


@dataclass(frozen=True)
class Movement:
    """One change of an account's MRR, at the time of the event that caused it."""

    ts: Fraction
    account: str
    kind: str
    cents: int


@dataclass
class Ledger:
    """Billing state after all admitted, non-stale subscription events."""

    account_mrr: dict[str, int] = field(default_factory=dict)
    movements: list[Movement] = field(default_factory=list)

    @property
    def paying(self) -> int:
        """Accounts paying now: their MRR is > 0."""
        return len(self.paying_accounts)

    @property
    def paying_accounts(self) -> set[str]:
        return {account for account, cents in self.account_mrr.items() if cents > 0}

    @property
    def mrr_cents(self) -> int:
        """Total MRR now."""
        return sum(self.account_mrr.values())


def fresh_subscription_events(events: list[Event]) -> list[Event]:
    """Drop stale events: dated before the newest one already applied (arrival order).

    Every subscription event (renewals included) applied to a subscription moves its
    "newest" mark; an equal time is not stale.
    """
    newest: dict[tuple[str, str], Fraction] = {}
    fresh: list[Event] = []
    for e in of_types(events, *SUBSCRIPTION_TYPES):
        sub = (e.account, e.field("subscription_id"))
        if sub in newest and e.ts < newest[sub]:
            continue
        newest[sub] = e.ts
        fresh.append(e)
    return fresh


def classify(old: int, new: int, seen_paying: bool) -> tuple[str, int]:
    """Movement kind and positive amount of an account MRR change old -> new (old != new)."""
    if old == 0:
        return ("reactivation" if seen_paying else "new"), new
    if new == 0:
        return "churned", old
    return ("expansion", new - old) if new > old else ("contraction", old - new)


def build_ledger(events: list[Event]) -> Ledger:
    """Replay fresh subscription events in time order (ties: arrival order).

    Per subscription, fresh events are already time-ordered, so the final state is
    the apply-order state; replaying across subscriptions in time order makes the
    account movements independent of cross-subscription arrival order.
    """
    subs: dict[str, dict[str, Subscription]] = defaultdict(dict)
    ledger = Ledger()
    seen_paying: set[str] = set()
    for e in sorted(fresh_subscription_events(events), key=lambda ev: (ev.ts, ev.seq)):
        account = e.account
        subs[account].setdefault(e.field("subscription_id"), Subscription()).apply(e)
        old = ledger.account_mrr.get(account, 0)
        new = sum(s.contribution() for s in subs[account].values())
        ledger.account_mrr[account] = new
        if new != old:
            kind, cents = classify(old, new, account in seen_paying)
            ledger.movements.append(Movement(e.ts, account, kind, cents))
            seen_paying.add(account)
    return ledger


def churn_window(ledger: Ledger, w: Window, t: Fraction, currency: str) -> Metrics:
    """Movements, churned accounts, churn and retention ratios for one window.

    Account counts are transitions: S = paying now - (new + reactivated - churned).
    """
    inside = [m for m in ledger.movements if w.contains(m.ts, t)]
    out: Metrics = {}
    for kind in MOVEMENT_KINDS:
        cents = sum(m.cents for m in inside if m.kind == kind)
        out[key("cs_mrr_movement", currency=currency, kind=kind, window=w.name)] = major(cents)
    churned = sum(1 for m in inside if m.kind == "churned")
    joined = sum(1 for m in inside if m.kind in ("new", "reactivation"))
    out[key("cs_churned_accounts", window=w.name)] = float(churned)
    start = ledger.paying - (joined - churned)
    if start > 0:
        out[key("cs_churn_ratio", window=w.name)] = float(Fraction(churned, start))
        out[key("cs_retention_ratio", window=w.name)] = float(
            Fraction(ledger.paying - joined, start)
        )
    out.update(revenue_retention(ledger, inside, w.name, currency))
    return out


def revenue_retention(
    ledger: Ledger, inside: list[Movement], window: str, currency: str
) -> Metrics:
    """MRR at the window's start, revenue churn, NRR, GRR and quick ratio (metrics.md).

    Start is MRR now with the window's movements undone, so start + movements = now.
    """
    cents = {kind: sum(m.cents for m in inside if m.kind == kind) for kind in MOVEMENT_KINDS}
    added = cents["new"] + cents["reactivation"] + cents["expansion"]
    lost = cents["contraction"] + cents["churned"]
    start = ledger.mrr_cents - (added - lost)
    out: Metrics = {key("cs_mrr_start", currency=currency, window=window): major(start)}
    label = {"window": window}
    put(out, key("cs_revenue_churn_ratio", **label), ratio(lost, start))
    put(out, key("cs_nrr_ratio", **label), ratio(start + cents["expansion"] - lost, start))
    put(out, key("cs_grr_ratio", **label), ratio(start - lost, start))
    put(out, key("cs_quick_ratio", **label), ratio(added, lost))
    return out


def event_ratios(events: list[Event], w: Window, t: Fraction) -> Metrics:
    """Renewal and trial-conversion ratios, counting events (stale ones too) in the window."""
    inside = [e for e in events if w.contains(e.ts, t)]
    renewed = len(of_types(inside, "subscription.renewed"))
    lapsed = sum(
        1 for e in of_types(inside, "subscription.canceled") if e.data.get("at_term_end") is True
    )
    converted = len(of_types(inside, "trial.converted"))
    expired = len(of_types(inside, "trial.expired"))
    out: Metrics = {
        key("cs_payment_failures", window=w.name): float(len(of_types(inside, "invoice.failed")))
    }
    put(out, key("cs_renewal_ratio", window=w.name), ratio(renewed, renewed + lapsed))
    put(
        out,
        key("cs_trial_conversion_ratio", window=w.name),
        ratio(converted, converted + expired),
    )
    return out


def retention_cost(events: list[Event], ledger: Ledger, w: Window, t: Fraction) -> float | None:
    """Customer-success cost in the window per paying account now (major units)."""
    costs = of_types(events, "cost.recorded")
    cents = sum(int(e.data["amount_cents"]) for e in costs if w.contains(e.ts, t))
    if ledger.paying == 0:
        return None
    return major(Fraction(cents, ledger.paying))


def revenue_metrics(events: list[Event], ledger: Ledger, t: Fraction, config: RefConfig) -> Metrics:
    """All revenue, churn and retention metrics."""
    currency = config.currency
    out: Metrics = {
        key("cs_mrr", currency=currency): major(ledger.mrr_cents),
        key("cs_paying_accounts"): float(ledger.paying),
    }
    for w in windows_of(config):
        out.update(churn_window(ledger, w, t, currency))
        out.update(event_ratios(events, w, t))
        cost = retention_cost(events, ledger, w, t)
        put(out, key("cs_retention_cost", currency=currency, window=w.name), cost)
    arpa = ratio(Fraction(ledger.mrr_cents, 100), ledger.paying)
    put(out, key("cs_arpa", currency=currency), arpa)
    churn = out.get(key("cs_churn_ratio", window="30d"))
    if arpa is not None and churn:
        put(out, key("cs_clv", currency=currency), arpa * config.gross_margin / churn)
    return out


# --------------------------------------------------------------------------- entry point


def compute(
    events: Sequence[Mapping[str, Any]], t: float, config: RefConfig = DEFAULT_CONFIG
) -> dict[MetricKey, float]:
    """Every business metric of metrics.md that has a value at reading time ``t``.

    ``events`` are valid CloudEvents in arrival order; duplicates, too-late
    events and stale subscription events are handled here, as cspulse must.
    """
    now = Fraction(t)
    admitted = admit(events, now, config)
    ledger = build_ledger(admitted)
    out: Metrics = {}
    out.update(support_metrics(admitted, now, config))
    out.update(survey_metrics(admitted, now, config))
    out.update(usage_metrics(admitted, now, config, ledger.paying_accounts))
    out.update(revenue_metrics(admitted, ledger, now, config))
    return out
