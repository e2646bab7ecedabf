"""One account as Redis holds it, for the board's account page.

The health mirror (``cs:acct:{<account>}``, written by
:mod:`aggregators.health_index`) holds every family's facts of the account;
the score index holds its last indexed score. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from aggregators import keys
from aggregators.facts import AccountFacts, merge
from aggregators.health import Health, HealthConfig, assess
from aggregators.health_index import SCORES, account_key


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
    facts = merge({keys.text(k): v for k, v in raw.items()})
    score = float(indexed) if indexed is not None else None
    return AccountView(account, facts, assess(facts, t, config), score)
