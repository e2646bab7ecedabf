"""The client's ceiling: aiokafka ``getmany`` and ``json.loads``, nothing else.

Reads the four topics as one consumer group member, decodes every value with
``json.loads`` and counts it; after each fetched batch it writes the count
to Redis (:data:`PROGRESS`) so the benchmark can time it like
the others. No state, no windows, no commits: what no consumer built on
aiokafka can beat on this machine. Run as ``python -m bench.raw_client``
with ``BENCH_KAFKA_BOOTSTRAP``, ``BENCH_REDIS_URL``, ``BENCH_TOPIC_PREFIX``
and ``BENCH_APP_ID``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from streams.config import FAMILY_TOPICS

PROGRESS = "bench:progress"
"""Events processed so far, written by the comparison clients (this one and Quix)."""


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"raw_client: set {name}")
    return value


async def run() -> None:
    """Consume until SIGTERM/SIGINT."""
    prefix = _env("BENCH_TOPIC_PREFIX")
    consumer = AIOKafkaConsumer(
        *(f"{prefix}{family}" for family in FAMILY_TOPICS),
        bootstrap_servers=_env("BENCH_KAFKA_BOOTSTRAP"),
        group_id=_env("BENCH_APP_ID"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    client = Redis.from_url(_env("BENCH_REDIS_URL"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await consumer.start()
    count = 0
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                for record in records:
                    json.loads(record.value)
                count += len(records)
            if batch:
                await client.set(PROGRESS, count)
    finally:
        await consumer.stop()
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(run())
