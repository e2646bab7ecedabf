"""``/accounts/<id>``: one account's health score, its components and what Redis knows.

Linked from the at-risk table. The facts are those the health score is
computed from (the health mirror), so the page explains the score.
"""

from __future__ import annotations

import html
import time

from aggregators.accounts import AccountView
from aggregators.health import active_days, recent
from streams.board.format import duration, fmt


def _when(ts: float, now: float) -> str:
    if not ts:
        return "never (in the last 30 days)"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    return f"{stamp} ({duration(max(0.0, now - ts))} ago)"


def account_main(view: AccountView, now: float, back: str) -> str:
    """The page body: score and band, components, plan, tickets, recent activity."""
    f, h = view.facts, view.health
    parts = "".join(
        f'<div class="num"><b>{value:.0f}</b><span>{html.escape(name)} (0-100)</span></div>'
        for name, value in h.components.items()
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in h.reasons) or "<li>nothing</li>"
    days = active_days(f.logins.days, now)
    plan = f.billing.plan if f.billing.paying else f"{f.billing.plan} (not paying now)"
    facts = {
        "plan": plan,
        "latest subscription plan": f.billing.subscribed or "none",
        "open tickets": f"{f.tickets.open:.0f}",
        "tickets resolved": f"{f.tickets.resolved:.0f}, {f.tickets.fcr:.0f} at first contact",
        "active days, last 30": f"{days} day{'s' if days != 1 else ''}",
        "NPS answers": _nps(view),
        "CSAT answers": f"{f.surveys.csat_satisfied} satisfied of {f.surveys.csat_answers}",
        "payment failures, 30 days": str(recent(f.billing.failures, now)),
        "contractions, 30 days": str(recent(f.billing.contractions, now)),
        "last session event": _when(f.logins.last, now),
        "last ticket event": _when(f.tickets.last, now),
        "last survey answer": _when(f.surveys.last, now),
        "last billing event": _when(f.billing.last, now),
    }
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items())
    return (
        f'<p class="cap"><a href="{html.escape(back)}">&larr; back to the board</a></p>'
        '<main class="grid">'
        f'<section class="panel" data-panel="Health"><h2>Health of {html.escape(view.account)}'
        f'</h2><div class="nums"><div class="num"><b>{fmt(h.score, "score")}</b>'
        f"<span>score, band {html.escape(h.band)}</span></div>{parts}</div>"
        f'<p class="cap">What pulls it down:</p><ul>{reasons}</ul></section>'
        f'<section class="panel" data-panel="Account"><h2>Plan, tickets, activity</h2>'
        f"<dl>{rows}</dl>"
        '<p class="cap">From the facts the health score is computed from; an account\'s MRR '
        "is part of the MRR gauges, not of these facts.</p></section></main>"
    )


def _nps(view: AccountView) -> str:
    s = view.facts.surveys
    if not s.nps_answers:
        return "none"
    return f"{s.nps_answers}, mean score {s.nps_sum / s.nps_answers:.1f} of 10"
