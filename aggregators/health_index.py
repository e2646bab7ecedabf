"""Health scores in Redis: per-account facts, and indexes that count cheaply.

Each family's facts for an account are part of its partition's atomic state
(the entity :func:`~aggregators.entity_keys.facts_key`). After a batch is
applied, the worker mirrors the touched accounts' facts into
``cs:acct:{<account>}`` (one hash per account, a field per family, plus a
``~version`` that grows with every write), recomputes their scores and
updates the indexes, all in the ``{health}`` slot:

* ``cs:{health}:scores``: sorted set account -> score, so band counts are
  three ``ZCOUNT``s (O(log n)) and the worst accounts one ``ZRANGE``;
* ``cs:{health}:last``: sorted set account -> latest event time, to drop
  accounts with no event in 30 days;
* ``cs:{health}:sum``: the sum of scores, for the mean without a scan;
* ``cs:{health}:version``: hash account -> the mirror version last indexed.
  Two workers (two topics) may score one account at once; each score is
  computed from one atomic read of the mirror, and only a read newer than
  the one indexed may replace it, so the last write always wins;
* ``cs:{health}:usage`` and ``cs:{health}:usage:<plan>``: sorted sets
  account -> latest session event time, for accounts paying now (by plan in
  ``cs:{health}:usage_plan``). Paying accounts active in a window are one
  ``ZCOUNT`` from the window's start (``cs_product_usage_ratio``).

Updating one account costs O(log n); a scrape costs O(log n) whatever the
number of accounts. The mirror and indexes are rewritten from state, not
incremented per event, so repeating an update is harmless; an update lost
to a crash is redone from the partition's ``mirror_due`` list
(:meth:`~aggregators.store.PartitionStore.due_mirrors`). A mirror expires one
retention after its last write, unless a family's facts must persist (an
open ticket).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from aggregators import keys
from aggregators.facts import FAMILY_NAMES, AccountFacts, Facts, encode_facts, merge
from aggregators.health import BANDS, DAY, Health, HealthConfig, assess
from aggregators.health import score as account_score
from aggregators.scripts import script
from aggregators.shared_pipeline import Command, SharedPipeline

SCORES = f"{keys.PREFIX}:{{health}}:scores"
LAST = f"{keys.PREFIX}:{{health}}:last"
SUM = f"{keys.PREFIX}:{{health}}:sum"
VERSIONS = f"{keys.PREFIX}:{{health}}:version"
USAGE = f"{keys.PREFIX}:{{health}}:usage"
USAGE_PLAN = f"{keys.PREFIX}:{{health}}:usage_plan"
VERSION_FIELD = keys.VERSION_FIELD
KEEP_FIELD = keys.KEEP_FIELD
_ACCOUNT_PREFIX = f"{keys.PREFIX}:acct:{{"
"""An account's health mirror is this, the account and ``}`` (its own Cluster slot)."""
_KEEP_FIELDS = tuple(KEEP_FIELD + name for name in FAMILY_NAMES)
ACCOUNTS_PER_CALL = 500
"""Accounts one index script call (and, outside Cluster, one mirror script call) updates:
an ordinary batch's in one call, a backlog's in calls of a few ms of Redis each."""
_MSGPACK = msgspec.msgpack.Encoder()


def usage_key(plan: str | None = None) -> str:
    """Paying accounts by latest session time: the whole base, or one plan's."""
    return USAGE if plan is None else f"{USAGE}:{plan}"


_FIELDS_LUA = ", ".join(f"'{name}'" for name in (VERSION_FIELD, *FAMILY_NAMES, *_KEEP_FIELDS))
MIRROR_LUA = script(
    "mirror", header=f"local fields = {{{_FIELDS_LUA}}}\nlocal families = {len(FAMILY_NAMES)}\n"
)
"""Write one family's facts of each account in KEYS (ARGV[3]: msgpack ``[facts,
keep]`` per key), bump each mirror's version, return each mirror as ``[version,
facts of each family in FAMILY_NAMES order]`` (missing: nil).

The version starts from the server clock in microseconds, so it keeps growing
even when an expired mirror is created again (it stays below 2^53: exact in Lua).
Three commands per account (HMGET, HSET, EXPIRE or PERSIST), the field names in
the script: the per-batch cost is in the accounts, not in repeated arguments."""
_MIRROR_SHA = hashlib.sha1(MIRROR_LUA.encode()).hexdigest()

INDEX_LUA = script("index", header=f"local MIRROR_PREFIX = '{_ACCOUNT_PREFIX}'\n")
"""Index the scores of accounts whose mirror read is newer than the one indexed; then,
unless ARGV[1] (the cutoff) is empty, drop accounts with no event since the cutoff.

ARGV[2]: msgpack ``[account, score, last, version, paying, plan, used]`` per
account, numbers as msgpack floats (which Lua passes on to Redis exactly, as the
decimal text did). Each step is one command for all the accounts (``ZMSCORE``,
``HSET``, ``ZADD ... GT``, ...), not one per account: the accounts are distinct,
so the result is the one account-by-account updates would leave."""
_INDEX_SHA = hashlib.sha1(INDEX_LUA.encode()).hexdigest()


def account_key(account: str) -> str:
    return f"{_ACCOUNT_PREFIX}{account}}}"


def mirror_facts(raw: Mapping[Any, Any]) -> AccountFacts:
    """An account's facts from its whole mirror hash (``HGETALL``)."""
    return merge({keys.text(k): v for k, v in raw.items()})


def _read(
    mirror: list[Any], family: str | None = None, written: Facts | None = None
) -> tuple[AccountFacts, str]:
    """(facts, version) from a mirror as :data:`MIRROR_LUA` returns it (the version as
    text: Redis's cmsgpack reads no msgpack bin). With ``written``, ``family``'s facts as
    the mirror script was just given them: taken as they are, not decoded again."""
    version, *families = mirror
    held = {name: v for name, v in zip(FAMILY_NAMES, families, strict=True) if v is not None}
    if family is None or written is None:
        return merge(held), keys.text(version)
    del held[family]
    merged = merge(held)
    setattr(merged, family, written)
    return merged, keys.text(version)


def _writes(accounts: list[str], facts: Mapping[str, Facts]) -> list[tuple[str, bool]]:
    """(facts as text, keep) per account: text, not bytes, as Redis's cmsgpack reads no
    msgpack bin."""
    return [
        (encode_facts(own).decode(), own.persistent()) for own in map(facts.__getitem__, accounts)
    ]


class Due(NamedTuple):
    """A partition's due list (``cs:{tp}:mirror_due``) and the batch offset up to which
    the accounts mirrored may be forgotten from it."""

    key: str
    up_to: int


class _Release(NamedTuple):
    """What the index script needs to forget mirrored accounts from a due list."""

    due: Due
    family: str
    written: Mapping[str, str]
    """Each account's facts as the mirror script wrote them."""

    def args(self, accounts: list[str]) -> list[Any]:
        texts = [self.written[a] for a in accounts]
        return [self.family, str(self.due.up_to), _MSGPACK.encode(texts)]


class HealthIndex:
    """The worker side: mirror facts, rescore touched accounts."""

    def __init__(
        self,
        redis: Redis,
        config: HealthConfig,
        retention: int = 31 * DAY,
        pipeline: SharedPipeline | None = None,
    ) -> None:
        self.redis = redis
        self.pipeline = pipeline or SharedPipeline(redis)
        """Mirror writes and index updates travel with the worker's other partitions'."""
        self.config = config
        self.retention = retention
        self._cluster = isinstance(redis, RedisCluster)
        self._accounts_per_call = 1 if self._cluster else ACCOUNTS_PER_CALL

    async def update(
        self, family: str, facts: Mapping[str, Facts], t: float, due: Due | None = None
    ) -> bool:
        """Mirror one family's facts, rescore the accounts; with ``due``, also forget them
        from that partition's due list in the index's script. True when they were so
        forgotten (or none were given); False on Cluster, where the due list, mirrors and
        index are in different slots and the caller forgets them itself."""
        if not facts:
            return True
        accounts = sorted(facts)
        writes = _writes(accounts, facts)
        replies = await self._write_mirrors(family, accounts, writes)
        mirrors = dict(zip(accounts, replies, strict=True))
        if due is None or self._cluster:
            await self.index(mirrors, t, written=(family, facts))
            return due is None
        texts = [text for text, _keep in writes]
        release = _Release(due, family, dict(zip(accounts, texts, strict=True)))
        await self.index(mirrors, t, release, (family, facts))
        return True

    async def index(
        self,
        mirrors: Mapping[str, list[Any]],
        t: float,
        release: _Release | None = None,
        written: tuple[str, Mapping[str, Facts]] | None = None,
    ) -> None:
        """Score each account from its mirror as read, and index the scores of reads newer
        than the ones indexed; with ``release``, forget from the partition's due list the
        accounts whose mirror on this server holds the facts written. ``written``: a family
        and the facts of each account just given to the mirror script (read back as such)."""
        family, own = written if written is not None else (None, None)
        rows = []
        for account, mirror in mirrors.items():
            merged, version = _read(mirror, family, None if own is None else own[account])
            billing = merged.billing
            score = account_score(merged, t, self.config)
            used = float(merged.logins.last)
            rows.append(
                (account, score, float(merged.last), version, billing.paying, billing.plan, used)
            )
        commands: list[Command] = []
        for i in range(0, max(len(rows), 1), ACCOUNTS_PER_CALL):
            chunk = rows[i : i + ACCOUNTS_PER_CALL]
            # the stale accounts are dropped once, after every account is indexed
            final = i + ACCOUNTS_PER_CALL >= len(rows)
            names = [SCORES, LAST, SUM, VERSIONS, USAGE_PLAN, USAGE]
            args = [t - 30 * DAY if final else "", _MSGPACK.encode(chunk)]
            if release is not None and chunk:
                accounts = [row[0] for row in chunk]
                names.append(release.due.key)
                args += release.args(accounts)
            commands.append(("EVALSHA", _INDEX_SHA, len(names), *names, *args))
        await self.pipeline.execute(commands, (INDEX_LUA,))

    async def write_mirrors(
        self, family: str, accounts: list[str], facts: Mapping[str, Facts]
    ) -> list[Any]:
        """Each account's mirror after the write, in order."""
        return await self._write_mirrors(family, accounts, _writes(accounts, facts))

    async def _write_mirrors(
        self, family: str, accounts: list[str], writes: list[tuple[str, bool]]
    ) -> list[Any]:
        """On Redis Cluster every account's hash has its own slot: one pipelined
        ``EVALSHA`` per account. Elsewhere one ``EVALSHA`` writes up to
        :data:`ACCOUNTS_PER_CALL` accounts."""
        step = self._accounts_per_call
        # EVALSHA by name: redis-py's cluster pipeline refuses .evalsha()
        commands = [
            (
                "EVALSHA",
                _MIRROR_SHA,
                min(step, len(accounts) - i),
                *map(account_key, accounts[i : i + step]),
                family,
                self.retention,
                _MSGPACK.encode(writes[i : i + step]),
            )
            for i in range(0, len(accounts), step)
        ]
        replies = await self.pipeline.execute(commands, (MIRROR_LUA,))
        return [mirror for chunk in replies for mirror in chunk]


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
        rows.append(_row(account, assess(mirror_facts(raw), now, config)))
    return sorted(rows, key=lambda r: r["score"])


def _row(account: str, health: Health) -> dict[str, Any]:
    return {
        "account": account,
        "score": round(health.score, 2),
        "band": health.band,
        "components": {k: round(v, 2) for k, v in health.components.items()},
        "reasons": health.reasons,
    }
