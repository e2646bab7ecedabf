"""Apply one Kafka batch of one topic-partition to Redis, exactly once in effect.

Bytes -> :func:`schemas.parse_event` -> invalid ones to the dead-letter topic
-> :func:`aggregators.batch.fold_batch` -> one atomic script in Redis that
also advances the partition's applied offset. Messages at or below that
offset were applied before (a redelivery) and are skipped. The worker never
raises on data: a bad message is dead-lettered, an event that makes an
aggregator fail is dead-lettered as ``processing_error``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aggregators import keys
from aggregators.batch import (
    BatchResult,
    Offered,
    Outcome,
    fold_batch,
    keys_to_load,
    make_clock,
)
from aggregators.config import MetricConfig
from aggregators.effects import Effects
from aggregators.health import HealthConfig
from aggregators.health_index import HealthIndex
from aggregators.store import PartitionStore, PlanDirectory
from schemas import Rejected, parse_event
from streams import telemetry

log = logging.getLogger("cspulse.processor")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawMessage:
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message: RawMessage
    reason: str
    detail: str


DeadLetterSink = Callable[[str, int, Sequence[DeadLetter]], Awaitable[None]]
"""(source topic, partition, letters) -> delivered to the dead-letter topic."""


class Processor:
    """Shared by every agent of a worker; holds one store per partition."""

    def __init__(
        self,
        redis: Redis,
        config: MetricConfig,
        dead_letters: DeadLetterSink,
        *,
        family_of: Callable[[str], str | None],
        clock: str = "wall",
        max_future_seconds: float = 300.0,
        health: HealthConfig | None = None,
    ) -> None:
        self.redis = redis
        self.config = config
        self.dead_letters = dead_letters
        self.family_of = family_of
        self.clock = clock
        self.max_future_seconds = max_future_seconds
        self.watermark = 0.0
        self._stores: dict[tuple[str, int], PartitionStore] = {}
        self._registered: set[tuple[str, int]] = set()
        self._watermark_loaded = False
        self.plans = PlanDirectory(redis, config.max_plans)
        self.health = HealthIndex(redis, health or HealthConfig.load())

    def store(self, topic: str, partition: int) -> PartitionStore:
        found = self._stores.get((topic, partition))
        if found is None:
            found = self._stores[(topic, partition)] = PartitionStore(
                self.redis, self.config, topic, partition
            )
        return found

    async def applied_offset(self, topic: str, partition: int) -> int:
        """Last offset applied for the partition (-1 when none), from Redis; waits out outages."""
        key = keys.meta(keys.partition_tag(topic, partition))

        async def read() -> int:
            raw = await self.redis.hget(key, "offset")
            return int(raw) if raw is not None else -1

        return await retry_outages(read, f"{topic}[{partition}]")

    async def process(self, topic: str, partition: int, messages: Sequence[RawMessage]) -> int:
        """Apply a batch; retries Redis faults until done. Returns the offset applied."""
        family = self.family_of(topic)
        if family is None or not messages:
            return messages[-1].offset if messages else -1
        try:
            return await self._with_retries(topic, partition, family, messages)
        except RedisError as exc:
            log.error(
                "Redis rejected a batch of %s[%d] (%s); applying it message by message",
                topic,
                partition,
                exc,
            )
        for message in messages:
            try:
                await self._with_retries(topic, partition, family, [message])
            except RedisError as exc:
                await self._skip_poison(topic, partition, message, f"Redis rejected it: {exc}")
        return messages[-1].offset

    async def _skip_poison(
        self, topic: str, partition: int, message: RawMessage, detail: str
    ) -> None:
        """Dead-letter one message Redis refuses; if Redis refuses even that, keep trying.

        Never raise: an agent that crashes loses the batch it held.
        """
        delay = 0.5
        while True:
            try:
                return await self._skip_poison_once(topic, partition, message, detail)
            except Exception as exc:
                log.error(
                    "cannot skip %s[%d]@%d yet (%s); retrying in %.1fs",
                    topic,
                    partition,
                    message.offset,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _with_retries(
        self, topic: str, partition: int, family: str, messages: Sequence[RawMessage]
    ) -> int:
        """Apply, waiting out Redis outages; any other error is logged and retried too,
        because an agent that crashes loses the batch it held. Redis command errors
        (a refused script) are raised for the message-by-message path."""

        async def attempt() -> int:
            try:
                return await self._process_once(topic, partition, family, messages)
            except (RedisError, OSError):
                raise
            except Exception as exc:
                log.exception("unexpected error applying %s[%d]", topic, partition)
                raise _Retry from exc

        return await retry_outages(attempt, f"{topic}[{partition}]", also=(_Retry,))

    async def _skip_poison_once(
        self, topic: str, partition: int, message: RawMessage, detail: str
    ) -> None:
        """Dead-letter one message that cannot be applied, and move the offset past it."""
        store = self.store(topic, partition)
        letter = DeadLetter(message, "processing_error", detail[:300])
        while True:
            loaded = await store.load((), ())
            if loaded.offset >= message.offset:
                return
            await self.dead_letters(topic, partition, [letter])
            if await store.apply(
                BatchResult(Effects(), Outcome(), {}), loaded.offset, message.offset, 0.0
            ):
                telemetry.INVALID.labels(topic, "processing_error").inc()
                return

    async def _register(self, topic: str, partition: int, family: str) -> None:
        if (topic, partition) not in self._registered:
            await self.redis.hset(keys.REGISTRY, keys.partition_tag(topic, partition), family)
            self._registered.add((topic, partition))

    async def _load_watermark(self) -> None:
        """Start from the largest event time any worker applied (kept in Redis)."""
        tags = await self.redis.hkeys(keys.REGISTRY)
        if tags:
            pipe = self.redis.pipeline(transaction=False)
            for tag in tags:
                pipe.hget(keys.meta(keys.text(tag)), "max_ts")
            values = await pipe.execute()
            known = [float(v) for v in values if v is not None]
            self.watermark = max([self.watermark, *known])
        self._watermark_loaded = True

    async def _process_once(
        self, topic: str, partition: int, family: str, messages: Sequence[RawMessage]
    ) -> int:
        started = time.perf_counter()
        await self._register(topic, partition, family)
        if self.clock == "watermark" and not self._watermark_loaded:
            await self._load_watermark()
        store = self.store(topic, partition)
        now = time.time()
        offered, rejected = self._parse(topic, messages, now)
        entity_keys = keys_to_load(family, [o.event for o in offered])
        digests = [o.digest for o in offered]
        while True:
            loaded = await store.load(entity_keys, digests, (o.event.account_id for o in offered))
            # the partition's own stream time, not the process-wide watermark (metrics.md)
            watermark = self.clock == "watermark"
            t = (loaded.stream_time or 0.0) if watermark else time.time()
            last = messages[-1].offset
            if last <= loaded.offset:
                return loaded.offset
            fresh = [o for o in offered if o.offset > loaded.offset]
            labels = await self.plans.labels(
                p for o in fresh if (p := getattr(o.event.data, "plan", None)) is not None
            )
            clock = make_clock(self.config, t, advancing=watermark)
            result = fold_batch(family, fresh, loaded.batch_input(labels), self.config, clock)
            letters = [d for d in rejected if d.message.offset > loaded.offset]
            letters += self._planned_letters(result, messages)
            if letters:
                await self.dead_letters(topic, partition, letters)
            if await store.apply(result, loaded.offset, last, t):
                await self.plans.save(result.effects.plan_updates)
                self._account(topic, result, letters)
                health_t = self.watermark if self.clock == "watermark" else time.time()
                await self.health.update(family, result.effects.facts, health_t)
                telemetry.BATCH_SECONDS.observe(time.perf_counter() - started)
                return last
            log.info(
                "fence moved on %s[%d]: another worker applied first; replanning", topic, partition
            )

    def _parse(
        self, topic: str, messages: Sequence[RawMessage], now: float
    ) -> tuple[list[Offered], list[DeadLetter]]:
        offered: list[Offered] = []
        rejected: list[DeadLetter] = []
        for message in messages:
            result = parse_event(
                message.value,
                now=now,
                reporting_currency=self.config.currency,
                max_future_seconds=self.max_future_seconds,
                topic=topic,
            )
            if isinstance(result, Rejected):
                rejected.append(DeadLetter(message, result.reason, result.detail))
            else:
                offered.append(Offered(message.offset, result))
        return offered, rejected

    @staticmethod
    def _planned_letters(result: BatchResult, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        by_offset = {m.offset: m for m in messages}
        letters = [
            DeadLetter(
                by_offset[item.offset],
                "too_late",
                "event time is older than every retained bucket and the event changes no state",
            )
            for item in result.outcome.too_late
        ]
        letters += [
            DeadLetter(by_offset[item.offset], "processing_error", detail)
            for item, detail in result.outcome.failed
        ]
        return letters

    def _account(self, topic: str, result: BatchResult, letters: list[DeadLetter]) -> None:
        outcome = result.outcome
        for event_type, n in outcome.applied.items():
            telemetry.EVENTS.labels(topic, event_type).inc(n)
        if outcome.late:
            telemetry.LATE.labels(topic).inc(outcome.late)
        for letter in letters:
            if letter.reason != "too_late":
                telemetry.INVALID.labels(topic, letter.reason).inc()
        if outcome.duplicates:
            telemetry.DUPLICATES.labels(topic).inc(outcome.duplicates)
        if outcome.stale:
            telemetry.STALE.labels(topic).inc(outcome.stale)
        if outcome.max_event_time is not None:
            self.watermark = max(self.watermark, outcome.max_event_time)


class _Retry(Exception):
    """An unexpected error: log it and try the batch again."""


async def retry_outages(
    operation: Callable[[], Awaitable[T]],
    what: str,
    *,
    also: tuple[type[BaseException], ...] = (),
) -> T:
    """Run ``operation`` until it succeeds, backing off on Redis outages (logged, counted)."""
    retried: tuple[type[BaseException], ...] = (
        RedisConnectionError,
        RedisTimeoutError,
        OSError,
        *also,
    )
    delay = 0.1
    while True:
        try:
            return await operation()
        except retried as exc:
            telemetry.REDIS_RETRIES.inc()
            log.warning(
                "Redis unavailable or batch failed (%s); retrying %s in %.1fs", exc, what, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
