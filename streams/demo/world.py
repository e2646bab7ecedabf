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

Time is compressed where real life is too slow for a demo without history:
a billing term is about 4 hours of event time, a trial about 3 hours. With a
history, billing runs at its real pace before and after going live.

The world is split by behaviour: :mod:`streams.demo.core` (state, scheduler,
envelope, picks), :mod:`streams.demo.usage` (sessions, tickets, surveys),
:mod:`streams.demo.billing` (subscriptions, invoices, costs); this module
builds the world and runs it.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterator
from functools import partial

from streams.demo.billing import Billing
from streams.demo.catalogue import (
    AGENT_NAMES,
    COMPANY_WORDS,
)
from streams.demo.core import (
    BURST_DELAY_MS,
    CANCEL_NOW_RATE,
    CES_RATE,
    HISTORY_ACTIVITY,
    HISTORY_BUCKET_MS,
    HISTORY_CHANGE_SHARE,
    HISTORY_PAYING_AT_START,
    HISTORY_SIGNUP_SHARE,
    NPS_RATE,
    PLAN_CHANGE_RATE,
    SESSION_RATE,
    SIGNUP_RATE,
    TICKET_RATE,
    WARMUP_MS,
    Action,
    GeneratorConfig,
    Message,
    _Account,
    _activity,
)
from streams.demo.usage import Usage

__all__ = [
    "HISTORY_ACTIVITY",
    "EventGenerator",
    "GeneratorConfig",
    "Message",
    "_activity",
]


class EventGenerator(Usage, Billing):
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
