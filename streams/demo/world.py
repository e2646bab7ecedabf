"""Synthetic, deterministic customer-event world for demos, tests and benchmarks.

Why a simulation rather than independent random events: the metrics of
metrics.md come from *relationships* between events (a reply belongs to a
ticket, a heartbeat to a session, a renewal to a subscription). Independent
random events would give meaningless FCR, time-in-app or MRR. So the
generator runs a small discrete-event world: scheduled actions sit in a heap
keyed by event time (integer milliseconds), are popped in time order, emit
events at their own time and schedule follow-ups (never in the past).

Pure: no Kafka, no clock reads, no I/O. Everything random comes from seeded
``random.Random`` instances:

- the world (who does what, when) depends on ``config.seed`` and ``start``;
- entity and event ids come from a stream seeded with ``(seed, start)``, so
  two runs started at different times never share an event id (cspulse would
  drop them as duplicates) while one ``(seed, start)`` always replays the
  same bytes;
- malformed replacements have their own stream, so turning them on does not
  change the valid world behind them.

Time is compressed where real life is too slow for a demo: a billing term is
about 4 hours of event time, a trial about 3 hours.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from schemas.models import FAMILY_OF_TYPE
from streams.demo.catalogue import (
    AGENT_NAMES,
    BURST_REASONS,
    CHANNEL_WEIGHTS,
    CHANNELS,
    COMPANY_WORDS,
    COST_CATEGORIES,
    FOREIGN,
    NOW_REASONS,
    PHRASES,
    PLATFORM_WEIGHTS,
    PLATFORMS,
    SOURCES,
    TERM_END_REASONS,
)
from streams.demo.malformed import malform

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WARMUP_MS = HOUR_MS  # bootstrap events lie in the hour before start
HEARTBEAT_MS = 60_000
RENEWAL_MS = 4 * HOUR_MS  # compressed "month"
TRIAL_MS = 3 * HOUR_MS
BURST_DELAY_MS = 2 * MINUTE_MS  # churn-spike: normal world first
BURST_SPAN_MS = 5 * MINUTE_MS
BURST_SHARE = 0.4  # of paying accounts; the contract asks for >= 30 %

# History (GeneratorConfig.history_days): real-time billing and a growing base.
HISTORY_TERM_MS = 30 * DAY_MS  # a real month between renewals
HISTORY_TRIAL_MS = 14 * DAY_MS
HISTORY_HEARTBEAT_MS = 5 * MINUTE_MS  # under the idle timeout: time in app unchanged
HISTORY_ACTIVITY = 0.3  # usage, tickets, surveys at this intensity (or the live one if lower)
HISTORY_SIGNUP_SHARE = 1 / 40  # of the live (compressed) signup rate: steady growth
HISTORY_CHANGE_SHARE = 1 / 40  # plan changes: about 10 % of accounts a month
HISTORY_CANCEL_SHARE = 1 / 60  # immediate cancels: about 1 % of accounts a month
HISTORY_PAYING_AT_START = 0.45  # of accounts paying when the history begins (live: 0.80)
HISTORY_BUCKET_MS = HOUR_MS  # the 30d window's bucket size (default windows)
CHURN_WAVE = (12 * DAY_MS, 10 * DAY_MS)  # before start: a competitor's launch, two days
CHURN_WAVE_SHARE = 0.4

# Peak rates per account and hour, at the busiest hour of a weekday.
SESSION_RATE = 1.6
TICKET_RATE = 0.2
NPS_RATE = 0.05
CES_RATE = 0.03
SIGNUP_RATE = 0.12
PLAN_CHANGE_RATE = 0.01
CANCEL_NOW_RATE = 0.004

Action = Callable[[], None]


@dataclass(frozen=True)
class GeneratorConfig:
    """What world to simulate; every field has a demo-friendly default."""

    accounts: int = 200
    users_per_account: int = 8
    seed: int = 1
    malformed_share: float = 0.0  # share of messages that are deliberately invalid
    scenario: str = "normal"  # "normal" or "churn-spike"
    plans: tuple[tuple[str, int], ...] = (("starter", 4900), ("team", 19900), ("business", 79900))
    currency: str = "USD"
    history_days: float = 0.0
    """Days of history before start, aligned to the window's hourly buckets: weekly and daily
    cycles, a growing base, a churn wave."""


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka record; ``topic`` is the suffix, the caller adds its prefix."""

    topic: str
    key: bytes
    value: bytes


@dataclass(slots=True, eq=False)
class _Subscription:
    """Billing state; ``account.sub is self`` tells whether it is still current."""

    sub_id: str
    account: _Account
    plan: int
    trial: bool


@dataclass(slots=True, eq=False)
class _Account:
    """A customer: its users, a mood trait (at-risk accounts complain and churn more)."""

    account_id: str
    users: tuple[str, ...]
    at_risk: bool
    sub: _Subscription | None = None
    had_paid: bool = False

    def paying(self) -> bool:
        """Paying per metrics.md: an active non-trial subscription (all plans have MRR)."""
        return self.sub is not None and not self.sub.trial


@dataclass(slots=True, eq=False)
class _Session:
    """A product session; heartbeats run until ``end_ms``; ``clean`` sessions send ended."""

    session_id: str
    account_id: str
    user_id: str
    end_ms: int
    clean: bool


@dataclass(slots=True, eq=False)
class _Ticket:
    """A support ticket walking through replies, resolution and maybe a reopen."""

    ticket_id: str
    account: _Account
    user_id: str | None
    agent_id: str
    rounds: int  # customer/agent exchanges still to come before resolving
    reopened: bool = False
    resolved: bool = False


def _activity(t_ms: int) -> float:
    """Share of peak activity at ``t_ms`` (UTC): a daily bell around 13:00, low weekends.

    Never below 0.08, so a demo at 3 a.m. on a Sunday still shows events.
    """
    day, rest = divmod(t_ms, DAY_MS)
    hour = rest / HOUR_MS
    level = 0.2 + 0.8 * math.exp(-(((hour - 13.0) / 4.5) ** 2))
    return level * 0.4 if (day + 3) % 7 >= 5 else level  # 1970-01-01 was a Thursday


def _clamp(value: float, low: float, high: float) -> float:
    """Bound a heavy-tailed draw so no delay is absurd."""
    return min(high, max(low, value))


class EventGenerator:
    """Deterministic event world; see the module docstring for why it is built this way."""

    def __init__(self, config: GeneratorConfig, start: float, intensity: float = 1.0) -> None:
        """Build the world one hour before ``start`` and run it up to ``start`` (bootstrap)."""
        _validate(config, intensity)
        self._cfg = config
        self._intensity = intensity
        self._start_ms = math.floor(start * 1000 + 1e-3)  # bootstrap never after start
        self._rng = random.Random(config.seed)
        self._ids = random.Random(f"{config.seed}:{self._start_ms}:ids")
        self._bad = random.Random(f"{config.seed}:{self._start_ms}:malformed")
        self._heap: list[tuple[int, int, Action]] = []
        self._seq = 0
        self._live_from = self._start_ms - WARMUP_MS
        # after a history, billing keeps its real-time pace: no cliff when going live
        self._realtime_billing = bool(config.history_days)
        self._history_from = self._history_start(config.history_days)
        # the base already running when the history begins is dated one bucket earlier
        self._now = (
            self._history_from - HISTORY_BUCKET_MS if config.history_days else self._live_from
        )
        self._clock_ms = self._now
        self._out: list[Message] = []
        self._surplus: deque[Message] = deque()
        self._day = -1
        self._date = ""
        self._accounts = self._make_accounts()
        self._agents = self._make_agents()
        self._plan_cum = _cumulative([max(5, 50 - 15 * i) for i in range(len(config.plans))])
        self._seed_world()
        self._bootstrap: list[Message] | None = None
        if not config.history_days:
            self._bootstrap = self._run_until(self._start_ms)

    # ------------------------------------------------------------------ API

    def bootstrap(self) -> list[Message]:
        """Events of the hour before ``start``: running subscriptions, open tickets, live sessions.

        Computed once (the world must exist before it can move on); every call
        returns the same list. With history, it is the history and the hour.
        """
        if self._bootstrap is None:
            self._bootstrap = [m for chunk in self.catch_up() for m in chunk]
        return list(self._bootstrap)

    def catch_up(self, chunk_s: float = 6 * 3600) -> Iterator[list[Message]]:
        """Everything before ``start`` in time-ordered chunks of ``chunk_s`` of event time.

        For long histories: the caller publishes chunk by chunk instead of
        holding a month of events in memory. Yields nothing once caught up.
        """
        if self._bootstrap is not None:
            return
        step = max(1, round(chunk_s * 1000))
        if self._clock_ms < self._history_from - 1:
            yield self._run_until(self._history_from - 1)  # the running base: billing only
        while self._clock_ms < self._start_ms:
            yield self._run_until(min(self._start_ms, self._clock_ms + step))
        self._bootstrap = []

    def advance(self, until: float) -> list[Message]:
        """All events with event time in (previous until, until], in time order.

        Messages that ``stream()`` generated but did not yield yet come first
        (they are dated at or before the previous until).
        """
        out = [m for chunk in self.catch_up() for m in chunk] + list(self._surplus)
        self._surplus.clear()
        until_ms = math.floor(until * 1000 + 1e-3)  # tolerate float noise on exact ms
        if until_ms > self._clock_ms:
            out.extend(self._run_until(until_ms))
        return out

    def stream(self, count: int, step: float = 1.0) -> Iterator[Message]:
        """Yield exactly ``count`` messages, advancing event time ``step`` seconds at a time.

        For benchmarks: as fast as the CPU allows, no waiting. Messages of the
        last step that were not yielded are kept for the next call.
        """
        if step <= 0:
            raise ValueError("step must be > 0")
        step_ms = max(1, round(step * 1000))
        left = count
        while left > 0:
            if not self._surplus:
                self._surplus.extend(self._run_until(self._clock_ms + step_ms))
                continue
            left -= 1
            yield self._surplus.popleft()

    # ------------------------------------------------------------ scheduler

    def _at(self, t_ms: int, action: Action) -> None:
        """Schedule ``action`` at ``t_ms``, never before the current event time."""
        self._seq += 1
        heapq.heappush(self._heap, (max(t_ms, self._now), self._seq, action))

    def _after(self, delay_s: float, action: Action) -> None:
        """Schedule ``action`` ``delay_s`` seconds from now (at least 1 ms, to keep order)."""
        self._at(self._now + max(1, round(delay_s * 1000)), action)

    def _run_until(self, until_ms: int) -> list[Message]:
        """Pop and run every action up to ``until_ms`` inclusive; return what they emitted."""
        heap = self._heap
        while heap and heap[0][0] <= until_ms:
            t_ms, _, action = heapq.heappop(heap)
            self._now = t_ms
            action()
        self._clock_ms = until_ms
        out, self._out = self._out, []
        return out

    def _process(
        self,
        per_account_hour: float,
        fire: Action,
        cyclic: bool = True,
        scaled: bool = True,
        history_share: Callable[[], float] | None = None,
    ) -> None:
        """Start a Poisson process at its peak rate, thinned by the daily cycle when ``cyclic``.

        One heap entry per process (not per account) keeps the heap small;
        ``fire`` picks the account itself. In the history it is thinned again
        by ``history_share`` (default: usage at HISTORY_ACTIVITY).
        """
        rate = per_account_hour * len(self._accounts) * (self._intensity if scaled else 1.0)
        mean_gap_s = 3600.0 / rate
        share = history_share or (lambda: min(1.0, HISTORY_ACTIVITY / self._intensity))
        # billing (an explicit history_share) stays thinned after a history, live too
        thinned = self._historic if history_share is None else self._billing_historic

        def tick() -> None:
            if self._now < self._history_from:
                pass  # the bucket before the history holds the running base only
            elif thinned() and self._rng.random() >= share():
                pass
            elif not cyclic or self._rng.random() < _activity(self._now):
                fire()
            self._after(self._rng.expovariate(1.0 / mean_gap_s), tick)

        self._after(self._rng.expovariate(1.0 / mean_gap_s), tick)

    # --------------------------------------------------------------- history

    def _history_start(self, days: float) -> int:
        """First millisecond of the history: the oldest bucket of a ``days`` window at start.

        The subscriptions already running then are dated in the bucket just
        before it: kept by the worker (retention is the window plus one
        bucket) but in no window, so a 30d window starts with their MRR, as
        a real business would. Without history, the warm-up hour.
        """
        if not days:
            return self._live_from
        buckets = round(days * DAY_MS / HISTORY_BUCKET_MS)
        return (self._start_ms // HISTORY_BUCKET_MS - buckets + 1) * HISTORY_BUCKET_MS

    def _historic(self) -> bool:
        """Whether the world is still in the history (before the warm-up hour)."""
        return self._now < self._live_from

    def _billing_historic(self) -> bool:
        """Whether billing runs at its real-time pace: in the history and after it."""
        return self._realtime_billing or self._historic()

    def _in_churn_wave(self) -> bool:
        return self._start_ms - CHURN_WAVE[0] <= self._now < self._start_ms - CHURN_WAVE[1]

    def _term_ms(self) -> int:
        return HISTORY_TERM_MS if self._billing_historic() else RENEWAL_MS

    def _trial_ms(self) -> int:
        return HISTORY_TRIAL_MS if self._billing_historic() else TRIAL_MS

    def _cancel_share(self) -> float:
        return CHURN_WAVE_SHARE if self._in_churn_wave() else HISTORY_CANCEL_SHARE

    # ----------------------------------------------------------------- world

    def _make_accounts(self) -> list[_Account]:
        """Accounts and users are stable for a seed (same customers across restarts)."""
        out = []
        upa = self._cfg.users_per_account
        for i in range(1, self._cfg.accounts + 1):
            account_id = f"{COMPANY_WORDS[(i - 1) % len(COMPANY_WORDS)]}-{i:04d}"
            n_users = max(1, round(upa * self._rng.uniform(0.5, 1.5)))
            users = tuple(f"u-{i:04d}-{j:03d}" for j in range(1, n_users + 1))
            out.append(_Account(account_id, users, at_risk=self._rng.random() < 0.15))
        return out

    def _make_agents(self) -> tuple[str, ...]:
        """An agent pool that grows with the customer base (one agent per ~15 accounts)."""
        n = max(3, self._cfg.accounts // 15 + 2)
        return tuple(
            AGENT_NAMES[i % len(AGENT_NAMES)]
            + ("" if i < len(AGENT_NAMES) else str(i // len(AGENT_NAMES)))
            for i in range(n)
        )

    def _seed_world(self) -> None:
        """Initial customers sign up early in the warm-up hour; every process starts."""
        paying = HISTORY_PAYING_AT_START if self._historic() else 0.80
        for acct in self._accounts:
            r = self._rng.random()
            if r < paying + 0.08:
                start = partial(self._initial_subscription, acct, r >= paying)
                self._after(self._rng.uniform(0.001, 300.0), start)
        backlog = 0 if self._cfg.history_days else max(3, len(self._accounts) // 25)
        for _ in range(backlog):  # a backlog open at start (a history has its own)
            delay_ms = round(self._rng.uniform(1800, 3500) * 1000)
            self._at(self._live_from + delay_ms, partial(self._open_ticket, True))
        self._process(SESSION_RATE, self._start_session)
        self._process(TICKET_RATE, self._open_ticket)
        self._process(NPS_RATE, partial(self._product_survey, "nps"))
        self._process(CES_RATE, partial(self._product_survey, "ces"))
        self._process(
            SIGNUP_RATE, self._signup, scaled=False, history_share=lambda: HISTORY_SIGNUP_SHARE
        )
        self._process(
            PLAN_CHANGE_RATE,
            self._mid_term_change,
            cyclic=False,
            scaled=False,
            history_share=lambda: HISTORY_CHANGE_SHARE,
        )
        self._process(
            CANCEL_NOW_RATE,
            self._mid_term_cancel,
            cyclic=False,
            scaled=False,
            history_share=self._cancel_share,
        )
        cost_rate = (2.0 + 2.0 * len(self._accounts) / 200) / len(self._accounts)
        self._process(cost_rate, self._record_cost, cyclic=False)
        if self._cfg.scenario == "churn-spike":
            self._at(self._start_ms + BURST_DELAY_MS, self._churn_burst)

    # -------------------------------------------------------------- emitting

    def _emit(self, etype: str, data: dict[str, Any]) -> None:
        """Wrap ``data`` in a CloudEvents envelope at the current time, on its family's
        topic; maybe malform it."""
        topic = FAMILY_OF_TYPE[etype]
        event = {
            "specversion": "1.0",
            "id": self._uuid(),
            "source": SOURCES[topic],
            "type": etype,
            "time": self._stamp(self._now),
            "data": data,
        }
        key = data["account_id"].encode()
        share = self._cfg.malformed_share
        if share > 0.0 and self._bad.random() < share:
            value = malform(self._bad, topic, event, self._cfg.currency)
        else:
            value = orjson.dumps(event)
        self._out.append(Message(topic, key, value))

    def _uuid(self) -> str:
        """A uuid4-shaped id from the seeded id stream (deterministic, unlike uuid.uuid4)."""
        n = self._ids.getrandbits(128)
        n = (n & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
        n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _new_id(self, prefix: str) -> str:
        """Entity ids (tickets, sessions, subscriptions, invoices) unique per (seed, start)."""
        return f"{prefix}{self._ids.getrandbits(48):012x}"

    def _stamp(self, t_ms: int) -> str:
        """RFC 3339 UTC with milliseconds; the date part is cached per day for speed."""
        sec, ms = divmod(t_ms, 1000)
        day, sod = divmod(sec, 86400)
        if day != self._day:
            self._day = day
            self._date = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
        h, rem = divmod(sod, 3600)
        m, s = divmod(rem, 60)
        return f"{self._date}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z"

    # ---------------------------------------------------------------- picks

    def _pick(self) -> _Account:
        """A uniformly random account (processes thin by account state themselves)."""
        return self._accounts[int(self._rng.random() * len(self._accounts))]

    def _pick_plan(self) -> int:
        """Plan index: cheap plans are the most common."""
        return self._rng.choices(range(len(self._cfg.plans)), cum_weights=self._plan_cum)[0]

    def _mrr(self, plan: int) -> int:
        """MRR of a plan in minor units (one seat per subscription)."""
        return self._cfg.plans[plan][1]

    def _delay(self, median_s: float, sigma: float, low: float, high: float) -> float:
        """A log-normal delay: most are short, a few are long, as in real queues."""
        return _clamp(self._rng.lognormvariate(math.log(median_s), sigma), low, high)

    # -------------------------------------------------------------- sessions

    def _start_session(self) -> None:
        """A user opens the product; ex-customers and prospects rarely do."""
        acct = self._pick()
        rng = self._rng
        if acct.sub is None and rng.random() > 0.05:
            return
        s = _Session(
            self._new_id("s-"),
            acct.account_id,
            rng.choice(acct.users),
            end_ms=self._now + round(self._delay(900, 0.8, 60, 3600) * 1000),
            clean=rng.random() < 0.85,
        )
        platform = rng.choices(PLATFORMS, PLATFORM_WEIGHTS)[0]
        self._emit(
            "session.started",
            {
                "account_id": s.account_id,
                "session_id": s.session_id,
                "user_id": s.user_id,
                "platform": platform,
            },
        )
        self._at(min(self._now + self._heartbeat_ms(), s.end_ms), partial(self._session_tick, s))

    def _heartbeat_ms(self) -> int:
        return HISTORY_HEARTBEAT_MS if self._historic() else HEARTBEAT_MS

    def _session_tick(self, s: _Session) -> None:
        """Heartbeat every ~60 s until the end; unclean sessions just go silent."""
        data = {"account_id": s.account_id, "session_id": s.session_id, "user_id": s.user_id}
        if self._now >= s.end_ms:
            if s.clean:
                self._emit("session.ended", data)
            return
        self._emit("session.heartbeat", data)
        jitter = int(self._rng.uniform(-300, 300))
        next_ms = self._now + self._heartbeat_ms() + jitter
        self._at(min(next_ms, s.end_ms), partial(self._session_tick, s))

    # --------------------------------------------------------------- support

    def _open_ticket(self, backlog: bool = False) -> None:
        """Customers of live accounts open tickets; at-risk accounts more often."""
        acct = self._pick()
        rng = self._rng
        if not backlog and (acct.sub is None or (not acct.at_risk and rng.random() < 0.3)):
            return
        user = rng.choice(acct.users) if rng.random() < 0.8 else None
        first_contact = rng.random() < 0.70
        rounds = 0 if first_contact else (1 if rng.random() < 0.75 else 2)
        t = _Ticket(self._new_id("T-"), acct, user, rng.choice(self._agents), rounds)
        data: dict[str, Any] = {
            "account_id": acct.account_id,
            "ticket_id": t.ticket_id,
            "channel": rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
        }
        if user is not None:
            data["user_id"] = user
        self._emit("ticket.opened", data)
        self._after(self._delay(720, 0.9, 20, 8 * 3600), partial(self._agent_reply, t))

    def _agent_reply(self, t: _Ticket) -> None:
        """An agent answers; then either the customer comes back or the ticket is resolved."""
        if self._rng.random() < 0.15:  # a colleague takes over now and then
            t.agent_id = self._rng.choice(self._agents)
        self._emit(
            "ticket.replied",
            {
                "account_id": t.account.account_id,
                "ticket_id": t.ticket_id,
                "author": "agent",
                "agent_id": t.agent_id,
            },
        )
        if t.rounds > 0:
            self._after(self._delay(1200, 1.0, 30, 12 * 3600), partial(self._customer_reply, t))
        else:
            self._after(self._delay(360, 0.9, 10, 2 * 3600), partial(self._resolve, t))

    def _customer_reply(self, t: _Ticket) -> None:
        """The customer needs more help: one more agent reply will follow."""
        t.rounds -= 1
        self._emit(
            "ticket.replied",
            {"account_id": t.account.account_id, "ticket_id": t.ticket_id, "author": "customer"},
        )
        self._after(self._delay(600, 0.9, 20, 6 * 3600), partial(self._agent_reply, t))

    def _resolve(self, t: _Ticket) -> None:
        """Resolve; after the first resolution maybe a survey, and ~8 % reopen later."""
        data = {"account_id": t.account.account_id, "ticket_id": t.ticket_id}
        if self._rng.random() < 0.9:
            data["agent_id"] = t.agent_id
        self._emit("ticket.resolved", data)
        if t.resolved:
            return
        t.resolved = True
        rng = self._rng
        if rng.random() < 0.08:
            self._after(self._delay(2700, 0.8, 120, 6 * 3600), partial(self._reopen, t))
        for kind, share in (("csat", 0.4), ("ces", 0.15)):
            if rng.random() < share:
                self._after(
                    self._delay(900, 1.0, 30, 6 * 3600), partial(self._ticket_survey, t, kind)
                )

    def _reopen(self, t: _Ticket) -> None:
        """The fix did not hold: reopened, one more agent reply, resolved again."""
        t.reopened = True
        t.rounds = 0
        self._emit(
            "ticket.reopened",
            {"account_id": t.account.account_id, "ticket_id": t.ticket_id},
        )
        self._after(self._delay(600, 0.9, 20, 4 * 3600), partial(self._agent_reply, t))

    # --------------------------------------------------------------- surveys

    def _ticket_survey(self, t: _Ticket, kind: str) -> None:
        """CSAT/CES after a resolution; long or reopened tickets leave customers less happy."""
        unhappy = 0.08 + (0.25 if t.reopened else 0.0) + (0.3 if t.account.at_risk else 0.0)
        data: dict[str, Any] = {
            "account_id": t.account.account_id,
            "ticket_id": t.ticket_id,
            "agent_id": t.agent_id,
        }
        if t.user_id is not None:
            data["user_id"] = t.user_id
        self._answer(kind, unhappy, data)

    def _product_survey(self, kind: str) -> None:
        """Relationship NPS and in-app CES, from users of live accounts."""
        acct = self._pick()
        if acct.sub is None:
            return
        data: dict[str, Any] = {
            "account_id": acct.account_id,
            "user_id": self._rng.choice(acct.users),
        }
        self._answer(kind, 0.5 if acct.at_risk else 0.1, data)

    def _answer(self, kind: str, unhappy: float, data: dict[str, Any]) -> None:
        """Draw a satisfaction level, map it to the kind's scale, maybe add a comment."""
        rng = self._rng
        q = _clamp(
            rng.gauss(0.35, 0.2) if rng.random() < unhappy else rng.gauss(0.85, 0.15), 0.0, 1.0
        )
        data["kind"] = kind
        if kind == "nps":
            data["score"] = round(q * 10)
        elif kind == "ces":
            data["score"] = 1 + round(q * 6)
        else:
            scale = rng.choices((5, 7, 10), (75, 15, 10))[0]
            data["score"] = 1 + round(q * (scale - 1))
            if scale != 5 or rng.random() < 0.5:  # leave the default implicit half the time
                data["scale_max"] = scale
        if rng.random() < 0.5:
            data["comment"] = self._comment(q)
        self._emit("survey.answered", data)

    def _comment(self, q: float) -> str:
        """Plain-English comment whose tone mostly matches the score; a few other languages."""
        rng = self._rng
        tones = ("positive", "neutral", "negative")
        if q >= 0.75:
            weights = (85, 15, 0)
        elif q >= 0.55:
            weights = (20, 60, 20)
        else:
            weights = (0, 15, 85)
        tone = rng.choices(tones, weights)[0]
        if rng.random() < 0.06:
            return rng.choice(FOREIGN[tone])
        phrases = rng.sample(PHRASES[tone], 2 if rng.random() < 0.3 else 1)
        return " ".join(phrases)

    # --------------------------------------------------------------- billing

    def _initial_subscription(self, acct: _Account, trial: bool) -> None:
        """A subscription already running at start: renewals spread over the next term."""
        if acct.sub is not None:  # signed up on its own during the warm-up
            return
        sub = self._start_subscription(acct, trial, invoice=False)
        first = self._start_ms if not self._historic() else self._now
        if trial:
            self._at(
                first + round(self._rng.uniform(1, self._trial_ms())), partial(self._trial_end, sub)
            )
        else:
            self._at(
                first + round(self._rng.uniform(1, self._term_ms())), partial(self._renew, sub)
            )

    def _start_subscription(self, acct: _Account, trial: bool, invoice: bool) -> _Subscription:
        """Emit subscription.started (trials carry the plan price but count 0 until converted)."""
        sub = _Subscription(self._new_id("sub_"), acct, self._pick_plan(), trial)
        acct.sub = sub
        acct.had_paid = acct.had_paid or not trial
        self._emit("subscription.started", self._plan_data(sub, trial=trial))
        if invoice and not trial:
            self._invoice(sub, paid=True)
        return sub

    def _signup(self) -> None:
        """Prospects sign up (often as trials); churned accounts come back (reactivation)."""
        acct = self._pick()
        if acct.sub is not None:
            return
        rng = self._rng
        trial = rng.random() < (0.1 if acct.had_paid else 0.6)
        sub = self._start_subscription(acct, trial, invoice=True)
        if trial:
            self._after(
                self._trial_ms() / 1000 * rng.uniform(0.8, 1.2), partial(self._trial_end, sub)
            )
        else:
            self._schedule_renewal(sub)

    def _schedule_renewal(self, sub: _Subscription) -> None:
        """Next renewal about one (compressed) term from now."""
        self._after(self._term_ms() / 1000 * self._rng.uniform(0.9, 1.1), partial(self._renew, sub))

    def _renew(self, sub: _Subscription) -> None:
        """Term end: lapse (at_term_end cancel), or charge, sometimes with a plan change."""
        acct = sub.account
        if acct.sub is not sub:
            return
        rng = self._rng
        if rng.random() < 0.02 * (3 if acct.at_risk else 1):
            self._cancel(sub, at_term_end=True, reason=rng.choice(TERM_END_REASONS))
            return
        if rng.random() < 0.06:
            self._change_plan(sub)
        if rng.random() < 0.03 * (2 if acct.at_risk else 1):
            self._invoice(sub, paid=False)
            self._after(rng.uniform(20, 90) * 60, partial(self._retry_payment, sub))
            return
        self._charge_and_renew(sub)

    def _charge_and_renew(self, sub: _Subscription) -> None:
        """invoice.paid then subscription.renewed, and the next term is scheduled."""
        self._invoice(sub, paid=True)
        self._emit(
            "subscription.renewed",
            {"account_id": sub.account.account_id, "subscription_id": sub.sub_id},
        )
        self._schedule_renewal(sub)

    def _retry_payment(self, sub: _Subscription) -> None:
        """Dunning: most retries succeed, the rest end in involuntary churn."""
        if sub.account.sub is not sub:
            return
        if self._rng.random() < 0.85:
            self._charge_and_renew(sub)
            return
        self._invoice(sub, paid=False)
        self._cancel(sub, at_term_end=False, reason="payment_failed")

    def _trial_end(self, sub: _Subscription) -> None:
        """A trial converts (becomes paying) or expires (the account is a prospect again)."""
        acct = sub.account
        if acct.sub is not sub:
            return
        aid = acct.account_id
        if self._rng.random() < (0.3 if acct.at_risk else 0.55):
            if self._rng.random() < 0.2 and sub.plan + 1 < len(self._cfg.plans):
                sub.plan += 1  # converts onto a bigger plan than it tried
            sub.trial = False
            acct.had_paid = True
            self._emit("trial.converted", self._plan_data(sub))
            self._invoice(sub, paid=True)
            self._schedule_renewal(sub)
        else:
            acct.sub = None
            self._emit("trial.expired", {"account_id": aid, "subscription_id": sub.sub_id})

    def _mid_term_change(self) -> None:
        """Upgrades and downgrades between renewals."""
        acct = self._pick()
        if acct.sub is not None and acct.paying():
            self._change_plan(acct.sub)

    def _change_plan(self, sub: _Subscription) -> None:
        """Move one plan up (mostly) or down; emit subscription.changed with the new MRR."""
        n = len(self._cfg.plans)
        if n < 2:
            return
        up = self._rng.random() < 0.65
        sub.plan = sub.plan + 1 if (up and sub.plan + 1 < n) or sub.plan == 0 else sub.plan - 1
        self._emit("subscription.changed", self._plan_data(sub))

    def _mid_term_cancel(self) -> None:
        """Immediate cancellations (at_term_end false), mostly from at-risk accounts."""
        acct = self._pick()
        if acct.sub is None or not acct.paying():
            return
        if self._in_churn_wave():
            self._cancel(acct.sub, at_term_end=False, reason="switched_competitor")
        elif acct.at_risk or self._rng.random() < 0.3:
            self._cancel(acct.sub, at_term_end=False, reason=self._rng.choice(NOW_REASONS))

    def _cancel(self, sub: _Subscription, at_term_end: bool, reason: str) -> None:
        """End a subscription now; the account stops paying at this event's time."""
        sub.account.sub = None
        self._emit(
            "subscription.canceled",
            {
                "account_id": sub.account.account_id,
                "subscription_id": sub.sub_id,
                "at_term_end": at_term_end,
                "reason": reason,
            },
        )

    def _invoice(self, sub: _Subscription, paid: bool) -> None:
        """An invoice for one term at the current MRR."""
        self._emit(
            "invoice.paid" if paid else "invoice.failed",
            {
                "account_id": sub.account.account_id,
                "invoice_id": self._new_id("in_"),
                "amount_cents": self._mrr(sub.plan),
                "currency": self._cfg.currency,
            },
        )

    def _plan_data(self, sub: _Subscription, **extra: Any) -> dict[str, Any]:
        """Data shared by started/changed/converted: plan, MRR and currency."""
        return {
            "account_id": sub.account.account_id,
            "subscription_id": sub.sub_id,
            "plan": self._cfg.plans[sub.plan][0],
            "mrr_cents": self._mrr(sub.plan),
            "currency": self._cfg.currency,
            **extra,
        }

    def _record_cost(self) -> None:
        """Customer-success cost (payroll/tooling/training), booked against a live account."""
        rng = self._rng
        live = [a for a in (self._pick() for _ in range(5)) if a.sub is not None]
        acct = live[0] if live else self._pick()
        category, low, high = rng.choice(COST_CATEGORIES)
        self._emit(
            "cost.recorded",
            {
                "account_id": acct.account_id,
                "amount_cents": rng.randint(low, high),
                "currency": self._cfg.currency,
                "category": category,
            },
        )

    def _churn_burst(self) -> None:
        """churn-spike: 40 % of paying accounts cancel immediately within the next 5 minutes."""
        paying = [a for a in self._accounts if a.paying()]
        victims = self._rng.sample(paying, math.ceil(BURST_SHARE * len(paying)))
        for acct in victims:
            if acct.sub is not None:
                delay = self._rng.uniform(0.001, BURST_SPAN_MS / 1000)
                self._after(delay, partial(self._burst_cancel, acct.sub))

    def _burst_cancel(self, sub: _Subscription) -> None:
        """One cancellation of the burst (skipped if the account already left)."""
        if sub.account.sub is sub:
            self._cancel(sub, at_term_end=False, reason=self._rng.choice(BURST_REASONS))


def _cumulative(weights: list[int]) -> list[int]:
    """Cumulative weights for random.choices (computed once, not per draw)."""
    out, total = [], 0
    for w in weights:
        total += w
        out.append(total)
    return out


def _validate(config: GeneratorConfig, intensity: float) -> None:
    """Reject configurations that would make an empty or invalid world early and clearly."""
    if config.accounts < 1 or config.users_per_account < 1:
        raise ValueError("accounts and users_per_account must be >= 1")
    if not 0.0 <= config.malformed_share <= 1.0:
        raise ValueError("malformed_share must be within 0..1")
    if config.scenario not in ("normal", "churn-spike"):
        raise ValueError(f"unknown scenario {config.scenario!r}")
    if not config.plans or any(not name or cents < 0 for name, cents in config.plans):
        raise ValueError("plans must be non-empty (name, mrr_cents >= 0) pairs")
    if not config.currency:
        raise ValueError("currency must be non-empty")
    if not intensity > 0:
        raise ValueError("intensity must be > 0")
    if not (config.history_days == 0 or 1 <= config.history_days <= 60):
        raise ValueError("history_days must be 0 or within 1..60")
