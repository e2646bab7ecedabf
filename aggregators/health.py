"""Customer health: a 0-100 score per account from usage, support, sentiment, billing.

Pure. The facts each family keeps per account (:mod:`aggregators.facts`,
one ``facts`` method per family) go in; components, score, band and the
reasons it is low come out. Weights and limits live in ``health.toml``
beside this module.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from aggregators.facts import AccountFacts, SurveyFacts

DEFAULT_CONFIG = Path(__file__).with_name("health.toml")
DAY = 86400
BANDS = ("healthy", "neutral", "at_risk")
COMPONENTS = ("usage", "support", "sentiment", "billing")


@dataclass(frozen=True)
class HealthConfig:
    raw: Mapping[str, Any]

    @classmethod
    def load(cls, path: str | Path | None = None) -> HealthConfig:
        with open(path or DEFAULT_CONFIG, "rb") as handle:
            return cls(tomllib.load(handle))

    def get(self, section: str, key: str) -> float:
        found = self._numbers.get((section, key))
        return found if found is not None else float(self.raw[section][key])

    @cached_property
    def _numbers(self) -> dict[tuple[str, str], float]:
        """Every number of the file, read once for ``get`` (which reads a number written
        as text from ``raw``)."""
        return {
            (section, key): float(value)
            for section, table in self.raw.items()
            if isinstance(table, Mapping)
            for key, value in table.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }

    @cached_property
    def scoring(self) -> Scoring:
        """The numbers one score needs, looked up once (a worker scores every account
        its batches touch)."""
        weights = tuple(self.get("weights", name) for name in COMPONENTS)
        return Scoring(
            full_active_days=self.get("usage", "full_active_days"),
            open_ticket_penalty=self.get("support", "open_ticket_penalty"),
            no_answers=self.get("sentiment", "no_answers"),
            failure_penalty=self.get("billing", "failure_penalty"),
            contraction_penalty=self.get("billing", "contraction_penalty"),
            weights=weights,
            total=sum(weights),
        )


class Scoring(NamedTuple):
    """The config's numbers a score uses, by name (``[usage]``, ``[support]``, ...)."""

    full_active_days: float
    open_ticket_penalty: float
    no_answers: float
    failure_penalty: float
    contraction_penalty: float
    weights: tuple[float, ...]
    """In :data:`COMPONENTS` order."""
    total: float


@dataclass(frozen=True)
class Health:
    score: float
    band: str
    components: dict[str, float]
    reasons: list[str]


def active_days(days: Iterable[int], t: float) -> int:
    """Distinct active days among the 30 days ending at ``t``."""
    today = int(t // DAY)
    first = today - 30
    return len({d for d in days if first < d <= today})


def recent(times: Iterable[float], t: float) -> int:
    since = t - 30 * DAY
    return len([ts for ts in times if since < ts <= t])


def _component_values(
    facts: AccountFacts, t: float, numbers: Scoring
) -> tuple[float, float, float, float]:
    """Each component 0-100 from the account's facts, in :data:`COMPONENTS` order (missing
    facts count as no signal)."""
    tickets, billing = facts.tickets, facts.billing
    days = active_days(facts.logins.days, t)
    usage = 100.0 * min(1.0, days / numbers.full_active_days)
    open_tickets = max(0.0, tickets.open)
    backlog = max(0.0, 100.0 - numbers.open_ticket_penalty * open_tickets)
    fcr = 100.0 * tickets.fcr / tickets.resolved if tickets.resolved > 0 else 100.0
    support = 0.5 * backlog + 0.5 * fcr
    sentiment = _sentiment(facts.surveys, numbers.no_answers)
    pay = 100.0 - numbers.failure_penalty * recent(billing.failures, t)
    pay -= numbers.contraction_penalty * recent(billing.contractions, t)
    return usage, support, sentiment, max(0.0, pay)


def _sentiment(surveys: SurveyFacts, no_answers: float) -> float:
    parts = []
    if surveys.nps_answers:
        parts.append(100.0 * surveys.nps_sum / (10.0 * surveys.nps_answers))
    if surveys.csat_answers:
        parts.append(100.0 * surveys.csat_satisfied / surveys.csat_answers)
    return sum(parts) / len(parts) if parts else no_answers


def band_of(score: float, cfg: HealthConfig) -> str:
    if score >= cfg.get("bands", "healthy"):
        return "healthy"
    if score < cfg.get("bands", "at_risk"):
        return "at_risk"
    return "neutral"


def assess(facts: AccountFacts, t: float, cfg: HealthConfig) -> Health:
    """Score, band and reasons for one account."""
    numbers = cfg.scoring
    values = _component_values(facts, t, numbers)
    parts = dict(zip(COMPONENTS, values, strict=True))
    score = _weighted(values, numbers)
    return Health(score, band_of(score, cfg), parts, _reasons(facts, parts, t, cfg))


def score(facts: AccountFacts, t: float, cfg: HealthConfig) -> float:
    """The score alone (what the index keeps): :func:`assess` without the words."""
    numbers = cfg.scoring
    return _weighted(_component_values(facts, t, numbers), numbers)


def _weighted(values: tuple[float, ...], numbers: Scoring) -> float:
    """The weighted mean of the components (in :data:`COMPONENTS` order), within 0-100."""
    total, weights = numbers.total, numbers.weights
    weighted = sum([v * w for v, w in zip(values, weights, strict=True)]) / total if total else 0.0
    return min(100.0, max(0.0, weighted))


def _count(n: int, noun: str) -> str:
    """``1 open ticket``, ``2 open tickets``: reasons are read by people."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _reasons(
    facts: AccountFacts, parts: Mapping[str, float], t: float, cfg: HealthConfig
) -> list[str]:
    """What pulls the score down, worst component first, in words."""
    below = cfg.get("reasons", "below")
    tickets, billing = facts.tickets, facts.billing
    explain: dict[str, Callable[[], str]] = {
        "usage": lambda: (
            f"{_count(active_days(facts.logins.days, t), 'active day')} of the last 30"
        ),
        "support": lambda: (
            f"{_count(int(tickets.open), 'open ticket')}, {int(tickets.fcr)} of "
            f"{int(tickets.resolved)} resolved at first contact"
        ),
        "sentiment": lambda: "low NPS/CSAT answers",
        "billing": lambda: (
            f"{_count(recent(billing.failures, t), 'payment failure')}, "
            f"{_count(recent(billing.contractions, t), 'contraction')} in 30 days"
        ),
    }
    low = sorted((v, n) for n, v in parts.items() if v < below)
    return [f"{name}: {explain[name]()}" for _v, name in low]
