"""cspulse's processor fed by a plain aiokafka consumer: the same work without Faust.

Why it exists: to tell how much of the worker's throughput is lost in
Faust's per-message path rather than in cspulse's own parsing, planning and
Redis script. It reads the four topics with ``getmany`` and hands each
partition's records to the very :class:`~streams.processor.Processor` the
worker uses, so Redis ends up with the same state and the same applied
offsets, and the benchmark measures it exactly as it measures the worker.

Not a product: no offset commits (Redis holds the applied offsets), no
rebalance handling beyond what aiokafka does, dead letters are counted and
logged instead of published. Run as ``python -m bench.raw_worker`` with the
worker's ``CSPULSE_*`` environment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from redis.asyncio import Redis

from streams.config import FAMILY_TOPICS, Settings
from streams.processor import DeadLetter, Processor, RawMessage

log = logging.getLogger("bench.raw_worker")


async def _count_letters(topic: str, partition: int, letters: Sequence[DeadLetter]) -> None:
    log.warning("%d dead letters from %s[%d]", len(letters), topic, partition)


async def _apply(
    processor: Processor, topic: str, partition: int, records: Sequence[ConsumerRecord]
) -> None:
    messages = [RawMessage(r.offset, r.key, r.value) for r in records]
    await processor.process(topic, partition, messages)


async def run(settings: Settings) -> None:
    """Consume until SIGTERM/SIGINT, applying every fetched batch, partitions concurrently."""
    assert settings.kafka_bootstrap and settings.redis_url
    processor = Processor(
        Redis.from_url(settings.redis_url),
        settings.metric_config(),
        _count_letters,
        family_of=settings.family_of,
        clock=settings.clock,
    )
    consumer = AIOKafkaConsumer(
        *(settings.topic(f) for f in FAMILY_TOPICS),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=settings.batch_max,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=4 * settings.batch_max)
            await asyncio.gather(
                *(_apply(processor, tp.topic, tp.partition, rs) for tp, rs in batch.items())
            )
    finally:
        await consumer.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    if os.environ.get("BENCH_LOOP") == "uvloop":  # uvloop is not a dependency: install to try
        import uvloop

        uvloop.install()
    asyncio.run(run(Settings.model_validate({})))


if __name__ == "__main__":
    main()
