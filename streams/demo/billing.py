"""Subscriptions and money: trials, renewals, plan changes, cancellations, invoices, costs."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from streams.demo.catalogue import (
    BURST_REASONS,
    COST_CATEGORIES,
    NOW_REASONS,
    TERM_END_REASONS,
)
from streams.demo.core import (
    BURST_SHARE,
    BURST_SPAN_MS,
    WorldCore,
    _Account,
    _Subscription,
)


class Billing(WorldCore):
    """The billing life of accounts, and the churn-spike scenario's burst."""

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
