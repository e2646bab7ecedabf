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

from typing import Any

from aggregators.config import BatchClock, MetricConfig
from aggregators.effects import Contribution, Effects, Gauges
from aggregators.families.base import State
from aggregators.plans import NONE, gauges_with_plan, segmented
from schemas import Event

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

_STATELESS = {
    "subscription.renewed": RENEWED,
    "trial.converted": TRIALS_CONVERTED,
    "trial.expired": TRIALS_EXPIRED,
    "invoice.failed": PAYMENT_FAILURES,
}
_ACCOUNT_COUNTERS = {
    "new": ACCOUNTS_NEW,
    "reactivation": ACCOUNTS_REACTIVATED,
    "churned": ACCOUNTS_CHURNED,
}


def movement(kind: str) -> str:
    return f"mrr_{kind}_cents"


def classify_movement(before: int, after: int, ever_paid: bool) -> str:
    """The ChartMogul-style kind of one change of an account's MRR."""
    if before == 0:
        return "reactivation" if ever_paid else "new"
    if after == 0:
        return "churned"
    return "expansion" if after > before else "contraction"


class BillingFamily:
    """Entity: one account's subscriptions (invoices and costs are stateless)."""

    def entity_key(self, event: Event) -> str | None:
        if event.type.startswith(("subscription.", "trial.")):
            return f"b:{event.account_id}"
        return None

    def new_state(self, event: Event) -> State:
        return {"last": {}, "log": [], "base": {"subs": {}, "paid": False}}

    def update(self, state: State, event: Event, offset: int, effects: Effects) -> None:
        data: Any = event.data
        sub = data.subscription_id
        newest = state["last"].get(sub)
        if newest is not None and event.time < newest:
            effects.stale += 1
            return
        state["last"][sub] = event.time
        entry = _log_entry(event, data)
        if entry is not None:
            op, cents, plan = entry
            label = effects.labels.get(plan, plan) if plan is not None else None
            state["log"].append([event.time, offset, sub, op, cents, label])

    def count(self, event: Event, effects: Effects, config: MetricConfig) -> None:
        data: Any = event.data
        grans = config.granularities
        counter = _STATELESS.get(event.type)
        if counter:
            effects.count(counter, event.time, 1, grans, event.account_id)
        elif event.type == "subscription.canceled" and data.at_term_end:
            effects.count(CANCELED_AT_TERM, event.time, 1, grans, event.account_id)
        elif event.type == "cost.recorded":
            effects.count(COST_CENTS, event.time, data.amount_cents, grans, event.account_id)

    def contribute(self, state: State, config: MetricConfig) -> tuple[Contribution, Gauges]:
        contribution: Contribution = {}
        subs = {sub: list(v) for sub, v in state["base"]["subs"].items()}
        paid = state["base"]["paid"]
        mrr, plan = _account_mrr(subs), _account_plan(subs)
        for ts, _offset, sub, op, cents, label in sorted(state["log"], key=lambda e: (e[0], e[1])):
            subs[sub] = _next_sub_state(subs.get(sub), op, cents, label)
            after, plan_after = _account_mrr(subs), _account_plan(subs) or plan
            if after != mrr:
                kind = classify_movement(mrr, after, paid)
                segment = plan if kind == "churned" else plan_after
                _add(contribution, movement(kind), ts, abs(after - mrr), segment)
                if kind in _ACCOUNT_COUNTERS:
                    _add(contribution, _ACCOUNT_COUNTERS[kind], ts, 1, segment)
                paid = paid or after > 0
                mrr = after
            plan = plan_after
        gauges = {MRR_CENTS: float(mrr), PAYING: 1.0 if mrr > 0 else 0.0}
        return contribution, gauges_with_plan(gauges, plan or NONE)

    def note(self, facts: State, event: Event, config: MetricConfig) -> None:
        """Payment failure times of the account (the 50 most recent)."""
        if event.type == "invoice.failed":
            facts["failures"] = sorted([*facts.get("failures", []), event.time])[-50:]

    def finish(
        self, key: str, state: State, effects: Effects, config: MetricConfig, clock: BatchClock
    ) -> State | None:
        effects.persistent.add(key)
        _compact(state, clock.cutoff)
        account = key.removeprefix("b:")
        plan = _latest_plan(state)
        if plan is not None:
            effects.plan_updates[account] = plan
        contribution, _gauges = self.contribute(state, config)
        contraction = movement("contraction")
        times = sorted(ts for (name, ts) in contribution if name == contraction)
        effects.facts.setdefault(account, {})["contractions"] = times[-50:]
        return state


def _log_entry(event: Event, data: Any) -> list[Any] | None:
    """[op, mrr_cents, plan] for events that change a subscription, else None."""
    kind = event.type
    if kind == "subscription.started":
        return ["trial" if data.trial else "start", data.mrr_cents, data.plan]
    if kind in ("subscription.changed", "trial.converted"):
        return ["convert" if kind == "trial.converted" else "change", data.mrr_cents, data.plan]
    if kind in ("subscription.canceled", "trial.expired"):
        return ["end", 0, None]
    return None


def _next_sub_state(current: list[Any] | None, op: str, cents: int, plan: str | None) -> list[Any]:
    """[active, trial, mrr_cents, plan] after one subscription event."""
    _active, trial, mrr, old_plan = current or [False, False, 0, None]
    if op == "start":
        return [True, False, cents, plan]
    if op == "trial":
        return [True, True, cents, plan]
    if op == "change":
        return [True, trial, cents, plan]
    if op == "convert":
        return [True, False, cents, plan]
    return [False, trial, mrr, old_plan]


def _account_mrr(subs: dict[str, list[Any]]) -> int:
    return sum(int(s[2]) for s in subs.values() if s[0] and not s[1])


def _add(contribution: Contribution, name: str, ts: float, amount: float, plan: str | None) -> None:
    for field in (name, segmented(name, plan or NONE)):
        contribution[(field, ts)] = contribution.get((field, ts), 0) + amount


def _account_plan(subs: dict[str, list[Any]]) -> str | None:
    """The plan of the account's largest paying subscription (None when nothing pays)."""
    paying = [s for s in subs.values() if s[0] and not s[1] and s[3]]
    return max(paying, key=lambda s: int(s[2]))[3] if paying else None


def _latest_plan(state: State) -> str | None:
    """Plan label of the account's most recent subscription event that named one."""
    named = [e for e in state["log"] if e[5]]
    if named:
        return str(max(named, key=lambda e: (e[0], e[1]))[5])
    plans = [s[3] for s in state["base"]["subs"].values() if s[3]]
    return str(plans[-1]) if plans else None


def _compact(state: State, cutoff: float) -> None:
    """Fold log entries older than the retention into the base snapshot."""
    log = sorted(state["log"], key=lambda e: (e[0], e[1]))
    old = [e for e in log if e[0] < cutoff]
    if not old:
        return
    base = state["base"]
    for _ts, _offset, sub, op, cents, plan in old:
        base["subs"][sub] = _next_sub_state(base["subs"].get(sub), op, cents, plan)
        base["paid"] = base["paid"] or _account_mrr(base["subs"]) > 0
    state["log"] = [e for e in log if e[0] >= cutoff]
