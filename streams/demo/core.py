"""The simulated world's state, clock and shared helpers (see :mod:`streams.demo.world`).

:class:`WorldCore` holds what every behaviour uses: the event-time heap and
its scheduler, the history's pacing, the CloudEvents envelope and the random
picks. The behaviours (:mod:`streams.demo.usage`, :mod:`streams.demo.billing`)
build on it; :class:`streams.demo.world.EventGenerator` puts them together.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.models import FAMILY_OF_TYPE
from streams.demo.catalogue import (
    SOURCES,
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


class WorldCore:
    """State and helpers shared by the world's behaviours; built by EventGenerator."""

    _cfg: GeneratorConfig
    _intensity: float
    _start_ms: int
    _rng: random.Random
    _ids: random.Random
    _bad: random.Random
    _heap: list[tuple[int, int, Action]]
    _seq: int
    _live_from: int
    _realtime_billing: bool
    _history_from: int
    _now: int
    _clock_ms: int
    _out: list[Message]
    _day: int
    _date: str
    _accounts: list[_Account]
    _agents: tuple[str, ...]
    _plan_cum: list[int]

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
