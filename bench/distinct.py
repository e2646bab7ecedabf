"""Distinct users and accounts of one scrape: the union of the partitions against their sum.

Fills a real redis-server's last-seen sets through the apply script: ``--users``
users over ``--partitions`` usage partitions (accounts keyed to partitions, as
Kafka does), ``--shared`` of them also active in a second account on another
partition, latest times spread over 30 days, each account on one of ``--plans``
plans. Then it reads the distinct counts ``--repeat`` times both ways and
reports, per scrape, Redis CPU (``INFO cpu``) and wall time (Redis and this
process's parsing and union): ``sum`` is the previous read (one ``ZCOUNT`` per
partition, name and window, added up), ``union`` the shipped one. Also the
memory of the sets (``MEMORY USAGE``) and both ways' counts against the truth.

    python -m bench.distinct --partitions 48 --users 20000 --shared 0.05 --plans 20
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from hashlib import sha1
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from aggregators import keys, plans
from aggregators.batch import BatchResult, Outcome
from aggregators.config import MetricConfig
from aggregators.distinct import DISTINCT_LUA, DistinctQuery, distinct_names
from aggregators.effects import Effects
from aggregators.facts import LOGINS
from aggregators.store import PartitionStore
from bench.scrape import Cost, redis_cost
from streams.config import Settings
from streams.demo.embedded import start_redis

DAY = 86400.0
USERS_PER_ACCOUNT = 8
CHUNK = 5000
"""Members per apply call."""

Visits = dict[int, dict[tuple[str, str], float]]
"""Partition -> (user, account) -> latest event time."""


def visits(args: argparse.Namespace, t: float, rng: random.Random) -> tuple[Visits, dict[str, str]]:
    """Who was active where and when; and each account's plan."""
    accounts = max(1, args.users // USERS_PER_ACCOUNT)
    plan_of = {f"acct-{a}": f"plan-{a % args.plans:02d}" for a in range(accounts)}
    out: Visits = {p: {} for p in range(args.partitions)}
    for u in range(args.users):
        home = u % accounts
        homes = [home]
        if rng.random() < args.shared:
            homes.append(
                (home + 1 + rng.randrange(accounts - 1)) % accounts if accounts > 1 else home
            )
        for a in homes:
            account = f"acct-{a}"
            partition = hash_partition(account, args.partitions)
            out[partition][(f"user-{u}", account)] = t - rng.random() ** 2 * 30 * DAY
    return out, plan_of


def hash_partition(account: str, partitions: int) -> int:
    return sum(account.encode()) * 2654435761 % 2**32 % partitions


def effects_of(seen: dict[tuple[str, str], float], plan_of: dict[str, str]) -> Effects:
    """The last-seen writes of these visits, whole base and per plan, as a batch makes them."""
    effects = Effects()
    for (user, account), ts in seen.items():
        for name, member in (("u", user), ("a", account)):
            for target in (name, plans.segmented(name, plan_of[account])):
                best = effects.last_seen[target]
                best[member] = max(ts, best.get(member, ts))
    return effects


async def fill(
    url: str,
    config: MetricConfig,
    topic: str,
    all_visits: Visits,
    plan_of: dict[str, str],
    t: float,
) -> None:
    redis = Redis.from_url(url)
    await redis.sadd(keys.PLAN_NAMES, *sorted(set(plan_of.values())))
    for partition, seen in all_visits.items():
        await redis.hset(keys.REGISTRY, keys.partition_tag(topic, partition), LOGINS)
        store = PartitionStore(redis, config, topic, partition, LOGINS)
        items = sorted(seen.items())
        for n, start in enumerate(range(0, len(items), CHUNK)):
            effects = effects_of(dict(items[start : start + CHUNK]), plan_of)
            await store.apply(BatchResult(effects, Outcome(), {}), n - 1, n, t)
    await redis.aclose()


def labels(client: SyncRedis) -> list[str]:
    return [
        *sorted(keys.text(m) for m in client.smembers(keys.PLAN_NAMES)),
        plans.OTHER,
        plans.NONE,
    ]


def by_sum(
    client: SyncRedis, config: MetricConfig, tags: list[str], t: float
) -> dict[tuple[str, str], int]:
    """The previous read: one ZCOUNT per partition, name and window, added up."""
    pipe = client.pipeline(transaction=False)
    queued = []
    for window in config.windows:
        start = window.bucket_range(t)[0] * window.granularity
        for name in distinct_names(labels(client)):
            for tag in tags:
                pipe.zcount(keys.last_seen(tag, name), start, "+inf")
                queued.append((name, window.name))
    out: dict[tuple[str, str], int] = {}
    for key, count in zip(queued, pipe.execute(), strict=True):
        out[key] = out.get(key, 0) + int(count)
    return out


def by_union(
    client: SyncRedis, config: MetricConfig, tags: list[str], t: float
) -> dict[tuple[str, str], int]:
    """The shipped read (:mod:`aggregators.distinct`)."""
    query = DistinctQuery.at(config.windows, t, distinct_names(labels(client)), tags)
    sha = sha1(DISTINCT_LUA.encode()).hexdigest()  # loaded once, in report()
    pipe = client.pipeline(transaction=False)
    for tag in tags:
        pipe.execute_command("EVALSHA", sha, *query.call(tag))
    return query.counts(pipe.execute())


def truth(all_visits: Visits, config: MetricConfig, t: float) -> dict[str, int]:
    """Distinct users per window, plan="all", from the generated visits."""
    out = {}
    for window in config.windows:
        start = window.bucket_range(t)[0] * window.granularity
        out[window.name] = len(
            {u for seen in all_visits.values() for (u, _), ts in seen.items() if ts >= start}
        )
    return out


def memory(client: SyncRedis, tags: list[str]) -> tuple[int, int]:
    """Bytes and members of every last-seen set."""
    size = members = 0
    for tag in tags:
        for raw in client.scan_iter(f"cs:{tag}:z:*", count=1000):
            size += int(client.memory_usage(raw, samples=0) or 0)
            members += int(client.zcard(raw))
    return size, members


def measure(client: SyncRedis, read: Any, repeat: int) -> Cost:
    costs = [redis_cost(client, read) for _ in range(repeat)]
    return Cost(*(statistics.median(getattr(c, f) for c in costs) for f in Cost.__annotations__))


def report(
    client: SyncRedis,
    config: MetricConfig,
    tags: list[str],
    all_visits: Visits,
    t: float,
    repeat: int,
) -> None:
    client.script_load(DISTINCT_LUA)
    want = truth(all_visits, config, t)
    summed, united = by_sum(client, config, tags, t), by_union(client, config, tags, t)
    print("| window | true users | sum of partitions | union |\n|---|---:|---:|---:|")
    for window in config.windows:
        w = window.name
        print(f"| {w} | {want[w]} | {summed[('u', w)]} | {united[('u', w)]} |")
    size, members = memory(client, tags)
    print(
        f"\nlast-seen sets: {size / 2**20:.1f} MiB for {members} entries "
        f"({size / max(members, 1):.0f} B each), shared by every window"
    )
    rows = {
        "sum": measure(client, lambda: by_sum(client, config, tags, t), repeat),
        "union": measure(client, lambda: by_union(client, config, tags, t), repeat),
    }
    print("\n| read | Redis CPU per scrape | wall time per scrape |\n|---|---:|---:|")
    for name, cost in rows.items():
        print(f"| {name} | {cost.cpu_ms:.1f} ms | {cost.wall_ms:.1f} ms |")
    base = rows["sum"]
    print(
        f"\nunion / sum: Redis CPU {rows['union'].cpu_ms / base.cpu_ms:.2f}x, "
        f"wall {rows['union'].wall_ms / base.wall_ms:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--partitions", type=int, default=48)
    parser.add_argument("--users", type=int, default=20_000, help="distinct users over 30 days")
    parser.add_argument("--shared", type=float, default=0.05, help="share of users in two accounts")
    parser.add_argument("--plans", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    settings = Settings()
    config = settings.metric_config()
    topic = settings.topic(LOGINS)
    t = time.time()
    all_visits, plan_of = visits(args, t, random.Random(args.seed))
    with tempfile.TemporaryDirectory() as workdir:
        server = start_redis(Path(workdir))
        url = f"redis://127.0.0.1:{server.port}/0"
        try:
            asyncio.run(fill(url, config, topic, all_visits, plan_of, t))
            client = SyncRedis.from_url(url)
            tags = [keys.partition_tag(topic, p) for p in range(args.partitions)]
            print(
                f"{args.users} users, {args.shared:.0%} in two accounts, "
                f"{args.partitions} partitions, {args.plans} plans\n"
            )
            report(client, config, tags, all_visits, t, args.repeat)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
