"""How long one /metrics scrape spends reading Redis, with N plans and the default windows.

Fills a real redis-server through the real processor with generated events
(``--events``, spread over ``--plans`` plans), then times the full collector
(``Reader.read`` + ``readout.compute``) ``--repeat`` times and prints the
median, next to a baseline read of the same partitions' raw hashes.

    python -m bench.scrape --events 50000 --plans 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from aggregators.reader import Reader
from aggregators.readout import compute
from streams.config import Settings
from streams.embedded import start_redis
from streams.generator import EventGenerator, GeneratorConfig
from streams.processor import Processor, RawMessage


async def fill(url: str, settings: Settings, events: int, plans: int, partitions: int) -> None:
    redis = Redis.from_url(url)

    async def no_dead_letters(*_: object) -> None:
        return None

    processor = Processor(
        redis, settings.metric_config(), no_dead_letters, family_of=settings.family_of
    )
    plan_list = tuple((f"plan-{i:02d}", 1000 * (i + 1)) for i in range(plans))
    start = time.time() - 6 * 3600
    gen = EventGenerator(GeneratorConfig(accounts=400, plans=plan_list), start, intensity=3.0)
    offsets: dict[tuple[str, int], int] = {}
    batch: dict[tuple[str, int], list[RawMessage]] = {}
    for i, message in enumerate(gen.stream(events, step=5.0)):
        tp = (settings.topic(message.topic), hash(message.key) % partitions)
        offsets[tp] = offsets.get(tp, -1) + 1
        batch.setdefault(tp, []).append(RawMessage(offsets[tp], message.key, message.value))
        if i % 2000 == 1999:
            await flush(processor, batch)
    await flush(processor, batch)
    await redis.aclose()


async def flush(processor: Processor, batch: dict[tuple[str, int], list[RawMessage]]) -> None:
    for (topic, partition), messages in batch.items():
        await processor.process(topic, partition, messages)
    batch.clear()


def time_scrapes(url: str, settings: Settings, repeat: int) -> tuple[float, float, int]:
    reader = Reader(SyncRedis.from_url(url), settings.metric_config(), "wall")
    collector, raw = [], []
    samples = 0
    for _ in range(repeat):
        started = time.perf_counter()
        samples = len(compute(reader.read().snapshot, settings.metric_config()))
        collector.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipe = reader.redis.pipeline(transaction=False)
        for tag in reader.partitions():
            pipe.hgetall(f"cs:{tag}:g")
        pipe.execute()
        raw.append(time.perf_counter() - started)
    return statistics.median(collector), statistics.median(raw), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--plans", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as workdir:
        server = start_redis(Path(workdir))
        try:
            url = f"redis://127.0.0.1:{server.port}/0"
            print(
                f"filling Redis with {args.events} events over {args.plans} plans ...", flush=True
            )
            asyncio.run(fill(url, settings, args.events, args.plans, args.partitions))
            scrape, baseline, samples = time_scrapes(url, settings, args.repeat)
            print(
                "| events | plans | partitions/topic | samples | scrape read+compute (median) "
                "| baseline: one HGETALL per partition |"
            )
            print(
                f"| {args.events} | {args.plans} | {args.partitions} | {samples} | "
                f"{scrape * 1000:.1f} ms | {baseline * 1000:.2f} ms |"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
