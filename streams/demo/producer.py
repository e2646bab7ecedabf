"""Publish generated events to Kafka in real time (``cspulse generate`` and ``run``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from streams.config import Settings
from streams.demo.world import EventGenerator, GeneratorConfig, Message
from streams.kafka_options import client_options

log = logging.getLogger("cspulse.generate")

TICK = 0.2
"""Seconds between generator steps: events go out within this of their time."""


WORLD = GeneratorConfig()
"""The world's defaults; the options below and ``cspulse generate`` take them."""


@dataclass(frozen=True)
class GenerateOptions:
    """What ``cspulse generate`` (and ``run``) publish, and how fast."""

    accounts: int = WORLD.accounts
    users_per_account: int = WORLD.users_per_account
    intensity: float = 1.0
    duration: float = 0.0
    """Seconds to run; 0 runs until stopped."""
    scenario: str = WORLD.scenario
    malformed_share: float = WORLD.malformed_share
    seed: int = WORLD.seed
    verbose: bool = False
    history_days: float = WORLD.history_days
    worker_ready: Callable[[], bool] | None = None
    """In ``run``: whether the worker consumes yet. The history then waits for it, and
    for it to apply the running base (billing) first, so every account's plan is known
    before its first ticket or session is counted."""


BASE_HEAD_START = 3.0
"""Seconds the worker gets to apply the running base before the history follows."""
READY_TIMEOUT = 60.0


async def publish(producer: AIOKafkaProducer, settings: Settings, messages: list[Message]) -> None:
    futures = [await producer.send(settings.topic(m.topic), m.value, key=m.key) for m in messages]
    if futures:
        await asyncio.gather(*futures)


async def publish_history(
    producer: AIOKafkaProducer,
    settings: Settings,
    generator: EventGenerator,
    options: GenerateOptions,
) -> int:
    """Publish the generator's history chunk by chunk, logging progress; returns messages sent."""
    if not options.history_days:
        return 0
    log.info("publishing %g days of history before going live", options.history_days)
    started = last = time.monotonic()
    sent = 0
    for i, chunk in enumerate(generator.catch_up()):
        if i == 0:
            await _worker_ready(options.worker_ready)
        await publish(producer, settings, chunk)
        if i == 0 and options.worker_ready is not None:
            await asyncio.sleep(BASE_HEAD_START)
        sent += len(chunk)
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            log.info("history: %d events published (%.0f/s)", sent, sent / (last - started))
    log.info("history published: %d events in %.0f s; going live", sent, time.monotonic() - started)
    return sent


async def _worker_ready(ready: Callable[[], bool] | None) -> None:
    """Wait (a bounded time) until the worker has its partitions."""
    deadline = time.monotonic() + READY_TIMEOUT
    while ready is not None and not ready() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def generate_forever(settings: Settings, bootstrap: str, options: GenerateOptions) -> int:
    """Run the generator against the wall clock; returns the number of messages sent."""
    config = GeneratorConfig(
        accounts=options.accounts,
        users_per_account=options.users_per_account,
        seed=options.seed,
        malformed_share=options.malformed_share,
        scenario=options.scenario,
        currency=settings.currency,
        history_days=options.history_days,
    )
    start = time.time()
    generator = EventGenerator(config, start, intensity=options.intensity)
    producer = AIOKafkaProducer(**client_options(settings, bootstrap), linger_ms=10, acks="all")
    await producer.start()
    sent = 0
    last_report = start
    try:
        sent = await publish_history(producer, settings, generator, options)
        batch = generator.bootstrap()
        while True:
            await publish(producer, settings, batch)
            sent += len(batch)
            now = time.time()
            if options.verbose and now - last_report >= 5:
                log.info("generated %d events (%.0f/s)", sent, sent / (now - start))
                last_report = now
            if options.duration and now - start >= options.duration:
                return sent
            await asyncio.sleep(TICK)
            batch = generator.advance(time.time())
    finally:
        await producer.stop()
