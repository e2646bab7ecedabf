"""Health scores in Redis: per-account facts, and an index that counts bands cheaply.

Each family's facts for an account are part of its partition's atomic state
(entity ``f:<account>``). After a batch is applied, the worker mirrors the
touched accounts' facts into ``cs:acct:{<account>}`` (one hash per account,
a field per family), recomputes their scores and updates the index:

* ``cs:{health}:scores``: sorted set account -> score, so band counts are
  three ``ZCOUNT``s (O(log n)) and the worst accounts one ``ZRANGE``;
* ``cs:{health}:last``: sorted set account -> latest event time, to drop
  accounts with no event in 30 days;
* ``cs:{health}:sum``: the sum of scores, for the mean without a scan.

Updating one account costs O(log n); a scrape costs O(log n) whatever the
number of accounts. The mirror and index are rewritten from state, not
incremented per event, so repeating an update is harmless; an update lost
to a crash is redone at the account's next event.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from aggregators import keys
from aggregators.health import BANDS, DAY, Health, HealthConfig, assess

SCORES = f"{keys.PREFIX}:{{health}}:scores"
LAST = f"{keys.PREFIX}:{{health}}:last"
SUM = f"{keys.PREFIX}:{{health}}:sum"

INDEX_LUA = """
-- The sum is read and written with GET/SET, never INCRBYFLOAT: called from Lua
-- after any command with more than 4 arguments, Redis 6.2's INCRBYFLOAT (which
-- rewrites itself to SET ... KEEPTTL) shrinks the script engine's shared
-- argument array and the next long command overruns it (heap corruption).
local cutoff = tonumber(ARGV[1])
local sum = tonumber(redis.call('GET', KEYS[3])) or 0
for i = 2, #ARGV, 3 do
  local account, score, last = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local old = redis.call('ZSCORE', KEYS[1], account)
  redis.call('ZADD', KEYS[1], score, account)
  sum = sum + score - (tonumber(old) or 0)
  local seen = redis.call('ZSCORE', KEYS[2], account)
  if (not seen) or tonumber(seen) < tonumber(last) then
    redis.call('ZADD', KEYS[2], last, account)
  end
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff, 'LIMIT', 0, 500)
for _, account in ipairs(stale) do
  local old = redis.call('ZSCORE', KEYS[1], account)
  if old then
    sum = sum - tonumber(old)
    redis.call('ZREM', KEYS[1], account)
  end
  redis.call('ZREM', KEYS[2], account)
end
redis.call('SET', KEYS[3], string.format('%.17g', sum))
return #stale
"""


def account_key(account: str) -> str:
    return f"{keys.PREFIX}:acct:{{{account}}}"


def decode_facts(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    return {keys.text(k): orjson.loads(v) for k, v in raw.items()}


class HealthIndex:
    """The worker side: mirror facts, rescore touched accounts."""

    def __init__(self, redis: Redis, config: HealthConfig) -> None:
        self.redis = redis
        self.config = config
        self._index = redis.register_script(INDEX_LUA)

    async def update(self, family: str, facts: Mapping[str, Mapping[str, Any]], t: float) -> None:
        if not facts:
            return
        accounts = sorted(facts)
        pipe = self.redis.pipeline(transaction=False)
        for account in accounts:
            pipe.hset(account_key(account), family, orjson.dumps(facts[account]))
            pipe.hgetall(account_key(account))
        replies = await pipe.execute()
        args: list[Any] = [t - 30 * DAY]
        for account, raw in zip(accounts, replies[1::2], strict=True):
            merged = decode_facts(raw)
            health = assess(merged, t, self.config)
            last = max(f.get("last", 0.0) for f in merged.values())
            args += [account, repr(health.score), repr(float(last))]
        await self._index(keys=[SCORES, LAST, SUM], args=args)


def band_counts(redis: SyncRedis, config: HealthConfig) -> tuple[dict[str, int], float | None]:
    """(accounts per band, mean score) from the index: O(log n)."""
    healthy, at_risk = config.get("bands", "healthy"), config.get("bands", "at_risk")
    pipe = redis.pipeline(transaction=False)
    pipe.zcount(SCORES, healthy, "+inf")
    pipe.zcount(SCORES, "-inf", f"({at_risk}")
    pipe.zcard(SCORES)
    pipe.get(SUM)
    n_healthy, n_risk, total, raw_sum = pipe.execute()
    counts = dict(zip(BANDS, (n_healthy, total - n_healthy - n_risk, n_risk), strict=True))
    mean = float(raw_sum) / total if total and raw_sum is not None else None
    return counts, mean


def at_risk(
    redis: SyncRedis, config: HealthConfig, limit: int, t: float | None = None
) -> list[dict[str, Any]]:
    """The ``limit`` lowest-scoring accounts, rescored now, with what pulls them down."""
    now = time.time() if t is None else t
    worst = [keys.text(a) for a in redis.zrange(SCORES, 0, limit - 1)]  # type: ignore[arg-type]
    pipe = redis.pipeline(transaction=False)
    for account in worst:
        pipe.hgetall(account_key(account))
    rows = []
    for account, raw in zip(worst, pipe.execute(), strict=True):
        rows.append(_row(account, assess(decode_facts(raw), now, config)))
    return sorted(rows, key=lambda r: r["score"])


def _row(account: str, health: Health) -> dict[str, Any]:
    return {
        "account": account,
        "score": round(health.score, 2),
        "band": health.band,
        "components": {k: round(v, 2) for k, v in health.components.items()},
        "reasons": health.reasons,
    }
