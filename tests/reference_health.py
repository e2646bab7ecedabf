"""Reference computation of the customer health score, for tests only.

Written from the documented rules (docs/metrics.md, "Customer health") and
the shipped weights file, on top of the ticket and billing logic of
``tests/reference.py``; it imports nothing from ``aggregators`` or ``streams``.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests import reference

WEIGHTS_FILE = Path(__file__).resolve().parents[1] / "aggregators" / "health.toml"
DAY = 86400


def load_rules() -> dict[str, Any]:
    with WEIGHTS_FILE.open("rb") as handle:
        return tomllib.load(handle)


def scores(events: Sequence[Mapping[str, Any]], t: float) -> dict[str, dict[str, float]]:
    """Account -> components and score, for accounts with an event in the last 30 days."""
    rules = load_rules()
    admitted = reference.admit(events, reference.Fraction(t), reference.DEFAULT_CONFIG)
    accounts = {e.account for e in admitted if float(e.ts) > t - 30 * DAY}
    days: dict[str, set[int]] = defaultdict(set)
    nps: dict[str, list[float]] = defaultdict(list)
    csat: dict[str, list[bool]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    thresholds = reference.DEFAULT_CONFIG.csat_thresholds
    today = int(t // DAY)
    for e in admitted:
        if e.type.startswith("session.") and today - 30 < int(float(e.ts) // DAY) <= today:
            days[e.account].add(int(float(e.ts) // DAY))
        elif e.type == "survey.answered" and e.data["kind"] == "nps":
            nps[e.account].append(float(e.data["score"]))
        elif e.type == "survey.answered" and e.data["kind"] == "csat":
            scale = int(e.data.get("scale_max") or 5)
            csat[e.account].append(float(e.data["score"]) >= thresholds[scale])
        elif e.type == "invoice.failed" and float(e.ts) > t - 30 * DAY:
            failures[e.account] += 1
    tickets: dict[str, list[reference.Ticket]] = defaultdict(list)
    for (account, _tid), ticket in reference.collect_tickets(admitted).items():
        tickets[account].append(ticket)
    contractions: dict[str, int] = defaultdict(int)
    for move in reference.build_ledger(admitted).movements:
        if move.kind == "contraction" and float(move.ts) > t - 30 * DAY:
            contractions[move.account] += 1
    out = {}
    for account in accounts:
        parts = {
            "usage": 100.0 * min(1.0, len(days[account]) / rules["usage"]["full_active_days"]),
            "support": _support(tickets[account], rules),
            "sentiment": _sentiment(nps[account], csat[account], rules),
            "billing": max(
                0.0,
                100.0
                - rules["billing"]["failure_penalty"] * failures[account]
                - rules["billing"]["contraction_penalty"] * contractions[account],
            ),
        }
        weights = rules["weights"]
        parts["score"] = sum(parts[k] * weights[k] for k in weights) / sum(weights.values())
        out[account] = parts
    return out


def _support(tickets: list[reference.Ticket], rules: dict[str, Any]) -> float:
    open_now = sum(1 for t in tickets if t.is_open())
    resolved = [t for t in tickets if t.first_resolution is not None]
    fcr = sum(1 for t in resolved if t.first_contact_resolved())
    backlog = max(0.0, 100.0 - rules["support"]["open_ticket_penalty"] * open_now)
    return 0.5 * backlog + 0.5 * (100.0 * fcr / len(resolved) if resolved else 100.0)


def _sentiment(nps: list[float], csat: list[bool], rules: dict[str, Any]) -> float:
    parts = []
    if nps:
        parts.append(100.0 * sum(nps) / (10.0 * len(nps)))
    if csat:
        parts.append(100.0 * sum(csat) / len(csat))
    return sum(parts) / len(parts) if parts else float(rules["sentiment"]["no_answers"])


def band(score: float, rules: dict[str, Any]) -> str:
    if score >= rules["bands"]["healthy"]:
        return "healthy"
    return "at_risk" if score < rules["bands"]["at_risk"] else "neutral"
