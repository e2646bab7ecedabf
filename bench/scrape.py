"""Redis time of one /metrics scrape, and Redis CPU per applied event.

Scrape (``--partitions`` per topic, ``--plans`` plans, default windows): fills a
real redis-server so that *every bucket of every window* of every partition
holds every counter field of its family, for the whole base and each plan
segment (the field names come from a real processed sample), written through
the real apply script. Then it reads the same state ``--repeat`` times with
the shipped reader and with the previous read path (one Lua sum over every
bucket of every window: the baseline), side by side, and reports the Redis
time of one scrape: the server's CPU time (``INFO cpu``), and the scripts' share
from ``INFO commandstats``. Both readers must agree on every sum.

Write path (``--events``): applies generated events through the real
processor into an empty server and reports Redis CPU microseconds per event.

    python -m bench.scrape --partitions 12 --plans 20 --events 30000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from aggregators import keys, plans
from aggregators.batch import BatchResult, Outcome
from aggregators.effects import Effects
from aggregators.reader import Reader
from aggregators.readout import Snapshot, compute
from aggregators.store import PartitionStore
from streams.config import Settings
from streams.demo.embedded import start_redis
from streams.demo.world import EventGenerator, GeneratorConfig
from streams.processor import Processor, RawMessage

LEGACY_SUM_LUA = """
local out = {}
local nw = tonumber(ARGV[1])
for w = 1, nw do
  local first, count = tonumber(ARGV[2 * w]), tonumber(ARGV[2 * w + 1])
  local sums = {}
  for i = first, first + count - 1 do
    local kv = redis.call('HGETALL', KEYS[i])
    for j = 1, #kv, 2 do sums[kv[j]] = (sums[kv[j]] or 0) + tonumber(kv[j + 1]) end
  end
  local flat = {}
  for f, v in pairs(sums) do
    flat[#flat + 1] = f
    flat[#flat + 1] = string.format('%.17g', v)
  end
  out[w] = flat
end
return out
"""
"""The read path before rolling window sums: every bucket of every window, each call."""

_BUCKETS_PER_APPLY = 40


class LegacyReader(Reader):
    """The shipped reader with the previous per-bucket window sums (the baseline)."""

    def __init__(self, redis: SyncRedis, settings: Settings) -> None:
        super().__init__(redis, settings.metric_config())
        self._sum = redis.register_script(LEGACY_SUM_LUA)

    def _sum_call(self, tag: str, t: float) -> tuple[list[str], list[Any]]:
        bucket_keys: list[str] = []
        args: list[Any] = [len(self.config.windows.windows)]
        for window in self.config.windows:
            low, high = window.bucket_range(t)
            args += [len(bucket_keys) + 1, high - low + 1]
            bucket_keys += [keys.bucket(tag, window.granularity, k) for k in range(low, high + 1)]
        return bucket_keys, args


async def process_events(url: str, settings: Settings, events: int, plan_count: int) -> int:
    """Apply ``events`` generated events (one partition per topic); returns how many."""
    redis = Redis.from_url(url)

    async def no_dead_letters(*_: object) -> None:
        return None

    processor = Processor(
        redis, settings.metric_config(), no_dead_letters, family_of=settings.family_of
    )
    plan_list = tuple((f"plan-{i:02d}", 1000 * (i + 1)) for i in range(plan_count))
    gen = EventGenerator(
        GeneratorConfig(accounts=400, plans=plan_list), time.time() - 6 * 3600, intensity=3.0
    )
    offsets: dict[str, int] = {}
    batch: dict[str, list[RawMessage]] = {}
    for i, message in enumerate(gen.stream(events, step=5.0)):
        topic = settings.topic(message.topic)
        offsets[topic] = offsets.get(topic, -1) + 1
        batch.setdefault(topic, []).append(RawMessage(offsets[topic], message.key, message.value))
        if i % 2000 == 1999:
            for name, messages in batch.items():
                await processor.process(name, 0, messages)
            batch.clear()
    for name, messages in batch.items():
        await processor.process(name, 0, messages)
    await redis.aclose()
    return events


def family_fields(url: str, settings: Settings, plan_count: int) -> dict[str, list[str]]:
    """Every counter field a family writes, for the base and each of the plan labels."""
    client = SyncRedis.from_url(url)
    bases: dict[str, set[str]] = {}
    for raw in client.scan_iter("cs:{*}:b:*", count=1000):
        key = keys.text(raw)
        family = settings.family_of(key[len("cs:{") :].split(":", 1)[0])
        if family is not None:
            names = bases.setdefault(family, set())
            names.update(plans.split(keys.text(f))[0] for f in client.hkeys(raw))
    labels = [f"plan-{i:02d}" for i in range(plan_count)] + [plans.OTHER, plans.NONE]
    return {
        family: sorted(names | {plans.segmented(n, label) for n in names for label in labels})
        for family, names in bases.items()
    }


async def fill_full(
    url: str, settings: Settings, fields: dict[str, list[str]], partitions: int, t: float
) -> int:
    """Every bucket of every window, every field, through the apply script; returns buckets."""
    redis = Redis.from_url(url)
    config = settings.metric_config()
    windows = config.windows
    written = 0
    for family, names in sorted(fields.items()):
        topic = settings.topic(family)
        for partition in range(partitions):
            await redis.hset(keys.REGISTRY, keys.partition_tag(topic, partition), family)
            store = PartitionStore(redis, config, topic, partition, family)
            wanted = sorted(
                {
                    (w.granularity, k)
                    for w in windows
                    for k in range(w.bucket_range(t)[0], w.bucket_range(t)[1] + 1)
                }
            )
            for start in range(0, len(wanted), _BUCKETS_PER_APPLY):
                effects = Effects()
                for g, k in wanted[start : start + _BUCKETS_PER_APPLY]:
                    bucket = effects.counters[(g, k)]
                    for i, name in enumerate(names):
                        bucket[name] = float(1 + (i + k) % 7)
                offset = start // _BUCKETS_PER_APPLY
                await store.apply(BatchResult(effects, Outcome(), {}), offset - 1, offset, t)
            written += len(wanted)
    await redis.aclose()
    return written


@dataclass
class Cost:
    cpu_ms: float
    """Redis server CPU, user + sys (``INFO cpu``): everything, parsing and I/O included."""
    scripts_ms: float
    """``INFO commandstats`` usec of EVALSHA: the scripts, their nested commands included
    (commandstats also lists those nested commands under their own names, so its total
    counts them twice and is not used)."""
    wall_ms: float


def redis_cost(client: SyncRedis, action: Callable[[], object]) -> Cost:
    """Redis time spent by ``action``: server CPU and the scripts' commandstats usec."""
    client.config_resetstat()
    before = client.info("cpu")
    started = time.perf_counter()
    action()
    wall = time.perf_counter() - started
    after = client.info("cpu")
    stats = client.info("commandstats")
    usec = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    cpu = sum(after[k] - before[k] for k in ("used_cpu_user", "used_cpu_sys"))
    return Cost(cpu * 1000, usec / 1000, wall * 1000)


def same_sums(a: Snapshot, b: Snapshot) -> bool:
    def close(x: float, y: float) -> bool:
        return abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1.0)

    if a.sums.keys() != b.sums.keys():
        return False
    for window, fields in a.sums.items():
        other = b.sums[window]
        present = {f for f, v in fields.items() if v} | {f for f, v in other.items() if v}
        if any(not close(fields.get(f, 0.0), other.get(f, 0.0)) for f in present):
            return False
    return True


def scrape_table(url: str, settings: Settings, repeat: int) -> list[str]:
    client = SyncRedis.from_url(url)
    shipped = Reader(client, settings.metric_config())
    legacy = LegacyReader(client, settings)
    config = settings.metric_config()
    t = time.time()
    if not same_sums(shipped.read(t).snapshot, legacy.read(t).snapshot):
        raise SystemExit("the shipped reader and the baseline disagree on a window sum")
    rows: dict[str, list[Cost]] = {"shipped": [], "baseline": []}
    for _ in range(repeat):
        for name, reader in (("shipped", shipped), ("baseline", legacy)):
            rows[name].append(
                redis_cost(client, lambda r=reader: compute(r.read().snapshot, config))
            )
    out = []
    medians = {
        name: Cost(*(statistics.median(getattr(c, f) for c in costs) for f in Cost.__annotations__))
        for name, costs in rows.items()
    }
    for name, cost in medians.items():
        ratio = medians["baseline"].cpu_ms / cost.cpu_ms
        out.append(
            f"| {name} | {cost.cpu_ms:.1f} ms | {cost.scripts_ms:.1f} ms "
            f"| {cost.wall_ms:.1f} ms | {ratio:.0f}x |"
        )
    return out


def write_cost(url: str, settings: Settings, events: int, plan_count: int) -> Cost:
    client = SyncRedis.from_url(url)
    client.flushall()
    return redis_cost(
        client, lambda: asyncio.run(process_events(url, settings, events, plan_count))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--partitions", type=int, default=12, help="partitions per topic")
    parser.add_argument("--plans", type=int, default=20)
    parser.add_argument("--events", type=int, default=30_000, help="events for the write path")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as workdir:
        server = start_redis(Path(workdir))
        url = f"redis://127.0.0.1:{server.port}/0"
        try:
            print(f"write path: {args.events} generated events ...", flush=True)
            cost = write_cost(url, settings, args.events, args.plans)
            fields = family_fields(url, settings, args.plans)
            print(
                f"| events | Redis CPU µs/event | of which scripts (commandstats) |\n"
                f"|---:|---:|---:|\n| {args.events} | {cost.cpu_ms * 1000 / args.events:.2f} "
                f"| {cost.scripts_ms * 1000 / args.events:.2f} |",
                flush=True,
            )
            SyncRedis.from_url(url).flushall()
            started = time.perf_counter()
            buckets = asyncio.run(fill_full(url, settings, fields, args.partitions, time.time()))
            print(
                f"filled {buckets} full buckets over {len(fields) * args.partitions} partitions "
                f"({sum(len(f) for f in fields.values())} fields over the families) "
                f"in {time.perf_counter() - started:.0f}s",
                flush=True,
            )
            print(
                "| reader | Redis CPU per scrape | of which scripts (commandstats) "
                "| scrape wall time | baseline / reader (CPU) |\n|---|---:|---:|---:|---:|"
            )
            print("\n".join(scrape_table(url, settings, args.repeat)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
