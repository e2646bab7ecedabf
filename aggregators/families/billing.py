"""Revenue, churn and retention: MRR, its movements, paying accounts, billing counts.

Entity: one billing account, holding its subscriptions. A subscription
follows its own events in time order: an event older than the newest one
already applied to it is *stale* and leaves the state alone. Applied
subscription events are kept in a time-ordered log; the account's MRR
movements are a replay of that log, so an event for one subscription that
arrives after a later event of another lands where its time puts it. Log
entries older than the retention fold into a base snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec

from aggregators.config import MetricConfig
from aggregators.effects import Contribution, Tally, Windowed
from aggregators.entity_keys import BILLING_ACCOUNT, EntityKey
from aggregators.facts import BILLING, RECENT_TIMES, BillingFacts
from aggregators.families.base import Change, Family, Kept
from aggregators.plans import NONE
from schemas import Event
from schemas.models import (
    CostRecorded,
    InvoiceFailed,
    SubscriptionCanceled,
    SubscriptionChanged,
    SubscriptionRenewed,
    SubscriptionStarted,
    TrialConverted,
    TrialExpired,
)

MRR_CENTS = "mrr_cents"
PAYING = "paying_accounts"
MOVEMENT_KINDS = ("new", "reactivation", "expansion", "contraction", "churned")
ACCOUNTS_NEW = "accounts_new"
ACCOUNTS_REACTIVATED = "accounts_reactivated"
ACCOUNTS_CHURNED = "accounts_churned"
RENEWED = "renewed"
CANCELED_AT_TERM = "canceled_at_term_end"
TRIALS_CONVERTED = "trials_converted"
TRIALS_EXPIRED = "trials_expired"
PAYMENT_FAILURES = "payment_failures"
COST_CENTS = "cost_cents"

_ACCOUNT_COUNTERS = {
    "new": ACCOUNTS_NEW,
    "reactivation": ACCOUNTS_REACTIVATED,
    "churned": ACCOUNTS_CHURNED,
}

START, TRIAL, CHANGE, CONVERT, END = "start", "trial", "change", "convert", "end"
"""What a logged event does to its subscription."""


def movement(kind: str) -> str:
    return f"mrr_{kind}_cents"


_MOVEMENTS = {kind: movement(kind) for kind in MOVEMENT_KINDS}
CONTRACTION = _MOVEMENTS["contraction"]


def classify_movement(before: int, after: int, ever_paid: bool) -> str:
    """The ChartMogul-style kind of one change of an account's MRR."""
    if before == 0:
        return "reactivation" if ever_paid else "new"
    if after == 0:
        return "churned"
    return "expansion" if after > before else "contraction"


class Subscription(msgspec.Struct, array_like=True, frozen=True):
    """One subscription's state; it adds MRR while active and not a trial."""

    active: bool = False
    trial: bool = False
    mrr_cents: int = 0
    plan: str | None = None

    @property
    def paying_cents(self) -> int:
        return self.mrr_cents if self.active and not self.trial else 0


class LogEntry(msgspec.Struct, array_like=True, frozen=True):
    """One applied event that changes a subscription."""

    time: float
    offset: int
    subscription: str
    op: str
    """One of START, TRIAL, CHANGE, CONVERT, END."""
    mrr_cents: int
    plan: str | None
    """Bounded plan label, None for events that name no plan."""


class BillingState(msgspec.Struct, array_like=True):
    """One account's subscriptions: a base snapshot plus the log of recent events."""

    newest: dict[str, float] = msgspec.field(default_factory=dict)
    """Subscription -> time of the newest event applied to it (older ones are stale)."""
    log: list[LogEntry] = msgspec.field(default_factory=list)
    base: dict[str, Subscription] = msgspec.field(default_factory=dict)
    """Subscriptions after every log entry older than the retention."""
    ever_paid: bool = False
    """Whether the account paid at some point of the base (a later start is a reactivation)."""


def next_subscription(current: Subscription | None, entry: LogEntry) -> Subscription:
    """A subscription after one logged event."""
    now = current or Subscription()
    match entry.op:
        case "start" | "convert":
            return Subscription(True, False, entry.mrr_cents, entry.plan)
        case "trial":
            return Subscription(True, True, entry.mrr_cents, entry.plan)
        case "change":
            return Subscription(True, now.trial, entry.mrr_cents, entry.plan)
    return Subscription(False, now.trial, now.mrr_cents, now.plan)


def account_mrr(subs: Mapping[str, Subscription]) -> int:
    return sum(s.paying_cents for s in subs.values())


def account_plan(subs: Mapping[str, Subscription]) -> str | None:
    """The plan of the account's largest paying subscription (None when nothing pays)."""
    named = [s for s in subs.values() if s.active and not s.trial and s.plan]
    return max(named, key=lambda s: s.mrr_cents).plan if named else None


def _ordered(log: list[LogEntry]) -> list[LogEntry]:
    return sorted(log, key=lambda e: (e.time, e.offset))


class Billing:
    """Entity: one account's subscriptions; counters: renewals, trials, failures, costs."""

    state_type = BillingState
    applies_late = True
    tracks_live = False
    facts_type = BillingFacts

    def count(self, event: Event, segment: str, tally: Tally, config: MetricConfig) -> None:
        ts = event.time
        match event.data:
            case SubscriptionRenewed():
                tally.add(RENEWED, segment, ts, 1)
            case TrialConverted():
                tally.add(TRIALS_CONVERTED, segment, ts, 1)
            case TrialExpired():
                tally.add(TRIALS_EXPIRED, segment, ts, 1)
            case InvoiceFailed():
                tally.add(PAYMENT_FAILURES, segment, ts, 1)
            case SubscriptionCanceled(at_term_end=True):
                tally.add(CANCELED_AT_TERM, segment, ts, 1)
            case CostRecorded(amount_cents=cents):
                tally.add(COST_CENTS, segment, ts, cents)

    def key(self, event: Event) -> EntityKey | None:
        match event.data:
            case (
                SubscriptionStarted()
                | SubscriptionChanged()
                | SubscriptionRenewed()
                | SubscriptionCanceled()
                | TrialConverted()
                | TrialExpired()
            ):
                return EntityKey(BILLING_ACCOUNT, event.account_id)
        return None

    def new(self, event: Event, segment: str) -> BillingState:
        return BillingState()

    def fold(
        self, state: BillingState, event: Event, offset: int, labels: Mapping[str, str]
    ) -> bool:
        entry: tuple[str, int, str | None] | None
        match event.data:
            case SubscriptionStarted(subscription_id=sub, trial=trial, mrr_cents=cents, plan=plan):
                entry = (TRIAL if trial else START, cents, labels.get(plan, plan))
            case SubscriptionChanged(subscription_id=sub, mrr_cents=cents, plan=plan):
                entry = (CHANGE, cents, labels.get(plan, plan))
            case TrialConverted(subscription_id=sub, mrr_cents=cents, plan=plan):
                entry = (CONVERT, cents, labels.get(plan, plan))
            case SubscriptionCanceled(subscription_id=sub) | TrialExpired(subscription_id=sub):
                entry = (END, 0, None)
            case SubscriptionRenewed(subscription_id=sub):
                entry = None
            case _:
                return True
        newest = state.newest.get(sub)
        if newest is not None and event.time < newest:
            return False
        state.newest[sub] = event.time
        if entry is not None:
            op, cents, label = entry
            state.log.append(LogEntry(event.time, offset, sub, op, cents, label))
        return True

    def contribute(self, state: BillingState, config: MetricConfig) -> Contribution:
        windowed: Windowed = {}
        subs = dict(state.base)
        paid = state.ever_paid
        mrr, plan = account_mrr(subs), account_plan(subs)
        for entry in _ordered(state.log):
            subs[entry.subscription] = next_subscription(subs.get(entry.subscription), entry)
            after, plan_after = account_mrr(subs), account_plan(subs) or plan
            if after != mrr:
                kind = classify_movement(mrr, after, paid)
                segment = (plan if kind == "churned" else plan_after) or NONE
                _add(windowed, _MOVEMENTS[kind], segment, entry.time, abs(after - mrr))
                if kind in _ACCOUNT_COUNTERS:
                    _add(windowed, _ACCOUNT_COUNTERS[kind], segment, entry.time, 1)
                paid = paid or after > 0
                mrr = after
            plan = plan_after
        seg = plan or NONE
        gauges = {(MRR_CENTS, seg): float(mrr), (PAYING, seg): 1.0 if mrr > 0 else 0.0}
        return Contribution(windowed, gauges)

    def place(
        self, state: BillingState, before: BillingState | None, plan_at: Callable[[float], str]
    ) -> None:
        """Billing has no single segment: its amounts follow each subscription's plan."""

    def finish(self, state: BillingState, cutoff: float) -> Kept[BillingState] | None:
        """Kept for good while a subscription is active or a log entry is recent; an
        account with nothing active left expires one retention after its last event."""
        _compact(state, cutoff)
        active = any(sub.active for sub in state.base.values())
        return Kept(state, persistent=active or bool(state.log))

    def facts(
        self,
        previous: BillingFacts,
        events: Sequence[Event],
        changes: Sequence[Change[BillingState]],
        config: MetricConfig,
    ) -> BillingFacts:
        """Recent payment failures and contractions; paying now, on which plan."""
        failures = [e.time for e in events if isinstance(e.data, InvoiceFailed)]
        if failures:
            previous.failures = sorted([*previous.failures, *failures])[-RECENT_TIMES:]
        for change in changes:
            if change.after is None or change.contribution is None:
                continue
            windowed, gauges = change.contribution.windowed, change.contribution.gauges
            times = sorted(ts for (name, _seg, ts) in windowed if name == CONTRACTION)
            previous.contractions = times[-RECENT_TIMES:]
            previous.plan = next(seg for (name, seg) in gauges if name == PAYING)
            previous.paying = gauges[(PAYING, previous.plan)] > 0
            previous.subscribed = latest_plan(change.after)
        return previous


def _add(windowed: Windowed, name: str, seg: str, ts: float, n: float) -> None:
    key = (name, seg, ts)
    windowed[key] = windowed.get(key, 0.0) + n


def latest_plan(state: BillingState) -> str | None:
    """Plan label of the account's most recent subscription event that named one."""
    named = [e for e in state.log if e.plan]
    if named:
        return max(named, key=lambda e: (e.time, e.offset)).plan
    plans = [s.plan for s in state.base.values() if s.plan]
    return plans[-1] if plans else None


def _compact(state: BillingState, cutoff: float) -> None:
    """Fold log entries older than the retention into the base snapshot."""
    log = _ordered(state.log)
    old = [e for e in log if e.time < cutoff]
    if not old:
        return
    for entry in old:
        state.base[entry.subscription] = next_subscription(
            state.base.get(entry.subscription), entry
        )
        state.ever_paid = state.ever_paid or account_mrr(state.base) > 0
    state.log = [e for e in log if e.time >= cutoff]


_BILLING = Billing()
FIELDS = frozenset(
    {MRR_CENTS, PAYING, *_ACCOUNT_COUNTERS.values(), *_MOVEMENTS.values(), RENEWED}
    | {CANCELED_AT_TERM, TRIALS_CONVERTED, TRIALS_EXPIRED, PAYMENT_FAILURES, COST_CENTS}
)
"""The counter and gauge fields billing writes."""
FAMILY: Family[BillingState, BillingFacts] = Family(
    BILLING,
    _BILLING,
    _BILLING,
    _BILLING,
    FIELDS,
    window_counts={PAYMENT_FAILURES: "cs_payment_failures"},
)
