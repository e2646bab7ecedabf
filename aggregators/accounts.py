"""One account as Redis holds it, for the board's account page.

The health mirror (``cs:acct:{<account>}``, written by
:mod:`aggregators.health_index`) holds every family's facts of the account;
the score index holds its last indexed score. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis

from aggregators import keys
from aggregators.facts import AccountFacts
from aggregators.health import Health, HealthConfig, assess
from aggregators.health_index import SCORES, account_key, mirror_facts

SCAN = 500
"""How many of the lowest scores a plan's at-risk list looks through: bounded work per page."""


@dataclass(frozen=True)
class AccountView:
    account: str
    facts: AccountFacts
    health: Health
    """Rescored at the reading time, as the at-risk list does."""
    indexed: float | None
    """The score the index holds (set at the account's last event)."""


def account_view(redis: Redis, config: HealthConfig, account: str, t: float) -> AccountView | None:
    """The account's facts and health, or None when Redis holds nothing of it."""
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(account_key(account))
    pipe.zscore(SCORES, account)
    raw, indexed = pipe.execute()
    if not raw:
        return None
    facts = mirror_facts(raw)
    score = float(indexed) if indexed is not None else None
    return AccountView(account, facts, assess(facts, t, config), score)


def plan_of(facts: AccountFacts) -> str:
    """The plan label an account's events count in now (``none`` before any subscription)."""
    return facts.billing.subscribed or facts.billing.plan


def lowest_of_plan(
    redis: Redis, config: HealthConfig, plan: str, limit: int, t: float, scan: int = SCAN
) -> list[dict[str, Any]]:
    """The ``limit`` lowest-scoring accounts of one plan among the ``scan`` lowest of the
    whole base (the index is not kept per plan), rescored at ``t``, worst first."""
    worst = [keys.text(a) for a in redis.zrange(SCORES, 0, scan - 1)]  # type: ignore[arg-type]
    pipe = redis.pipeline(transaction=False)
    for account in worst:
        pipe.hgetall(account_key(account))
    rows: list[dict[str, Any]] = []
    for account, raw in zip(worst, pipe.execute(), strict=True):
        facts = mirror_facts(raw)
        if raw and plan_of(facts) == plan:
            h = assess(facts, t, config)
            rows.append({"account": account, "score": round(h.score, 2), "band": h.band,
                         "reasons": h.reasons, "plan": plan})  # fmt: skip
    return sorted(rows, key=lambda r: r["score"])[:limit]
