"""Apply one Kafka batch of one topic-partition to Redis, exactly once in effect.

Bytes -> :func:`schemas.parse_event` -> invalid ones to the dead-letter topic
-> :func:`aggregators.batch.fold_batch` -> one atomic script in Redis that
also advances the partition's applied offset. Messages at or below that
offset were applied before (a redelivery) and are skipped; a batch that
starts *after* offset + 1 means Redis went back in time (a restore, a
failover to a lagging replica), so the caller is told to re-read from there.
The worker never raises on data: a bad message is dead-lettered, an event
that makes a family's code fail is dead-lettered as ``processing_error`` (up
to a cap per partition and minute, :class:`~streams.error_budget.ErrorBudget`).
Past that cap, or on any other exception, it raises: the worker stops.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aggregators.batch import (
    BatchResult,
    Offered,
    Outcome,
    fold_batch,
    keys_to_load,
    make_clock,
    offer_all,
)
from aggregators.clock import Clock
from aggregators.config import MetricConfig
from aggregators.effects import Effects
from aggregators.entity_keys import FACTS
from aggregators.health import HealthConfig
from aggregators.health_index import HealthIndex
from aggregators.plan_directory import PlanDirectory
from aggregators.shared_pipeline import SharedPipeline
from aggregators.store import Loaded, PartitionStore
from schemas import Event, Rejected, parse_events
from schemas.models import FAMILY_OF_TYPE, TYPE_TO_DATA
from streams import telemetry
from streams.error_budget import DEFAULT_ERROR_CAP, ErrorBudget
from streams.plan_wait import Hold, PlanEnds, PlanWait
from streams.retry import RetryPolicy, retry_async

log = logging.getLogger("cspulse.processor")


class RawMessage(msgspec.Struct, frozen=True, gc=False):
    """One Kafka record as the processor sees it (a Struct: one is made per record)."""

    offset: int
    key: bytes | None
    value: bytes
    timestamp: float | None = None
    """The record's Kafka timestamp (Unix seconds): when the producer sent it. The dedup
    horizon is measured on it; None (no broker at hand) stands for the time it is read."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message: RawMessage
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Redis's applied offset is behind the batch: re-read the partition from ``resume_at``."""

    resume_at: int


DeadLetterSink = Callable[[str, int, Sequence[DeadLetter]], Awaitable[None]]
"""(source topic, partition, letters) -> delivered to the dead-letter topic."""

REDIS_BACKOFF = RetryPolicy(initial=0.1, factor=2.0, ceiling=5.0)
"""How long to wait between tries while Redis is down or refuses writes for a while."""

_TRANSIENT_CODES = re.compile(
    r"(?:^|[\s:('\"])"
    r"(READONLY|BUSY|LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|MOVED|ASK|OOM|NOREPLICAS) "
)
"""Redis error codes that say "not now" rather than "never": a replica, a busy or
loading server, a failover, a resharding, a full memory. They are retried. The
code may follow a script's or a pipeline's annotation of the error."""


def is_transient(exc: BaseException) -> bool:
    """Whether Redis may accept the same command later (outage or temporary refusal)."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | BusyLoadingError):
        return True
    if isinstance(exc, ReadOnlyError | OutOfMemoryError | ClusterDownError | TryAgainError):
        return True
    if isinstance(exc, AskError):
        return True
    return isinstance(exc, ResponseError) and bool(_TRANSIENT_CODES.search(str(exc)))


class Processor:
    """Shared by every partition a worker holds; keeps one store per partition."""

    def __init__(
        self,
        redis: Redis,
        config: MetricConfig,
        dead_letters: DeadLetterSink,
        *,
        family_of: Callable[[str], str | None],
        clock: Clock | None = None,
        max_future_seconds: float = 300.0,
        health: HealthConfig | None = None,
        plan_ends: PlanEnds | None = None,
        plan_wait_max: float = 300.0,
        error_cap: int = DEFAULT_ERROR_CAP,
    ) -> None:
        self.redis = redis
        self.plan_wait = PlanWait(config, plan_ends, plan_wait_max)
        self.config = config
        self.dead_letters = dead_letters
        self.family_of = family_of
        self.clock = clock or Clock()
        self.max_future_seconds = max_future_seconds
        self.watermark = 0.0
        """Largest stream time seen by this process (health index time under watermark)."""
        self._stores: dict[tuple[str, int], PartitionStore] = {}
        self._rewound: dict[tuple[str, int], int] = {}
        self._unfinished: dict[tuple[str, int], tuple[int, str, BatchResult, float]] = {}
        self.plans = PlanDirectory(redis, config.max_plans)
        self.pipeline = SharedPipeline(redis)
        """Partitions applied concurrently share their round trips to Redis."""
        self.health = HealthIndex(redis, health or HealthConfig.load(), pipeline=self.pipeline)
        self.errors = ErrorBudget(error_cap)
        """Family errors dead-lettered per partition and minute, up to the cap."""

    def store(self, topic: str, partition: int) -> PartitionStore:
        found = self._stores.get((topic, partition))
        if found is None:
            family = self.family_of(topic) or ""
            found = self._stores[(topic, partition)] = PartitionStore(
                self.redis, self.config, topic, partition, family, self.pipeline
            )
        return found

    async def applied_offset(self, topic: str, partition: int) -> int:
        """Last offset applied for the partition (-1 when none), from Redis; waits out outages."""
        store = self.store(topic, partition)
        offset: int = await self._redis_retry(
            store.applied_offset, f"reading {topic}[{partition}]'s offset from Redis"
        )
        return offset

    async def process(
        self, topic: str, partition: int, messages: Sequence[RawMessage]
    ) -> int | Gap | Hold:
        """Apply a batch (retrying Redis outages until done); the offset applied, or a Gap."""
        family = self.family_of(topic)
        if family is None or not messages:
            return messages[-1].offset if messages else -1
        try:
            return await self._with_retries(topic, partition, family, messages)
        except RedisError as exc:
            log.error(
                "Redis refused a batch of %s[%d] (%s); applying it message by message",
                topic,
                partition,
                exc,
            )
        for index, message in enumerate(messages):
            try:
                result = await self._with_retries(topic, partition, family, [message])
            except RedisError as exc:
                await self._skip_poison(topic, partition, message, f"Redis refused it: {exc}")
                continue
            if isinstance(result, Gap | Hold):
                return result if index == 0 else messages[index - 1].offset
        return messages[-1].offset

    async def _redis_retry(self, operation: Callable[[], Awaitable[Any]], what: str) -> Any:
        def count(_exc: BaseException) -> None:
            telemetry.REDIS_RETRIES.inc()

        return await retry_async(operation, REDIS_BACKOFF, is_transient, what, on_retry=count)

    async def _with_retries(
        self, topic: str, partition: int, family: str, messages: Sequence[RawMessage]
    ) -> int | Gap | Hold:
        """Apply, waiting out outages and temporary refusals. A command Redis refuses for
        good is raised for the message-by-message path; any other exception (a bug
        outside the families' code, or family errors past the cap) is raised: the worker
        stops, and the offset fence makes its restart exact."""

        def count(_exc: BaseException) -> None:
            telemetry.REDIS_RETRIES.inc()

        return await retry_async(
            lambda: self._process_once(topic, partition, family, messages),
            REDIS_BACKOFF,
            is_transient,
            f"applying {topic}[{partition}] to Redis",
            on_retry=count,
        )

    async def _skip_poison(
        self, topic: str, partition: int, message: RawMessage, detail: str
    ) -> None:
        """Dead-letter one message Redis refuses for good and move the offset past it.

        The letter is published once, before the offset moves (a crash in
        between republishes it, never loses it); Redis faults while moving
        the offset are waited out, not dead-lettered again.
        """
        store = self.store(topic, partition)
        letter = DeadLetter(message, "processing_error", detail[:300])
        published = False

        async def skip() -> None:
            nonlocal published
            while True:
                loaded = await store.load((), ())
                if loaded.offset >= message.offset:
                    return
                if not published:
                    await self.dead_letters(topic, partition, [letter])
                    published = True
                empty = BatchResult(Effects(), Outcome(), {})
                if await store.apply(empty, loaded.offset, message.offset, time.time()):
                    telemetry.INVALID.labels(topic, "processing_error").inc()
                    return

        await retry_async(
            skip,
            REDIS_BACKOFF,
            lambda e: True,
            f"skipping a message of {topic}[{partition}] in Redis",
        )

    async def _process_once(
        self, topic: str, partition: int, family: str, messages: Sequence[RawMessage]
    ) -> int | Gap | Hold:
        started = time.perf_counter()
        store = self.store(topic, partition)
        offered, rejected = self._parse(topic, messages, time.time())
        entity_keys = keys_to_load(family, offered)
        digests = [o.digest for o in offered]
        accounts = [key.account for key in entity_keys if key.kind == FACTS]
        while True:
            loaded = await store.load(entity_keys, digests, accounts)
            last = messages[-1].offset
            await self._finish_unfinished(topic, partition, loaded)
            if last <= loaded.offset:
                return loaded.offset
            gap = self._gap(topic, partition, messages[0].offset, loaded.offset)
            if gap is not None:
                return gap
            t = self.clock.batch_time(loaded.stream_time)
            fresh = _after(offered, loaded.offset)
            held = await self.plan_wait.hold(topic, partition, fresh, loaded.plan_progress)
            if held is not None:
                if held <= loaded.offset + 1:
                    return Hold(held)
                fresh = [o for o in fresh if o.offset < held]
                rejected = [d for d in rejected if d.message.offset < held]
                messages = [m for m in messages if m.offset < held]
                last = messages[-1].offset
            labels = await self.plans.labels(_plans_named(family, fresh))
            result = self._fold(family, fresh, loaded, t, labels)
            self.errors.spend(topic, partition, result.outcome)
            letters = [d for d in rejected if d.message.offset > loaded.offset]
            letters += self._letters_of(result, messages)
            if letters:
                await self.dead_letters(topic, partition, letters)
            health_t = self._health_time(loaded.stream_time, result.outcome.max_event_time)
            self._unfinished[(topic, partition)] = (last, family, result, health_t)
            arrived = _arrivals(messages, fresh)
            if await store.apply(result, loaded.offset, last, t, loaded.stream_time, arrived):
                await self._after_apply(topic, partition, family, result, health_t, last)
                self._account(topic, result, letters)
                self._rewound.pop((topic, partition), None)
                telemetry.BATCH_SECONDS.observe(time.perf_counter() - started)
                return last if held is None else Hold(held)
            self._unfinished.pop((topic, partition), None)
            log.info(
                "fence moved on %s[%d]: another worker applied first; folding the batch again",
                topic,
                partition,
            )

    def _gap(self, topic: str, partition: int, first: int, applied: int) -> Gap | None:
        """A Gap when the batch starts past Redis's offset + 1 and was not re-read already.

        After one re-read from offset + 1, a batch that still starts later means
        the log itself has nothing in between (retention, compaction, transaction
        markers): that is accepted.
        """
        expected = applied + 1
        if first <= expected or self._rewound.get((topic, partition)) == expected:
            return None
        self._rewound[(topic, partition)] = expected
        log.warning(
            "%s[%d]: Redis has applied up to offset %d but the batch starts at %d "
            "(Redis restored or failed over to an older copy); re-reading from %d",
            topic,
            partition,
            applied,
            first,
            expected,
        )
        return Gap(expected)

    async def _finish_unfinished(self, topic: str, partition: int, loaded: Loaded) -> None:
        """Redo the after-apply steps of a batch Redis holds but whose apply reply was lost."""
        pending = self._unfinished.pop((topic, partition), None)
        if pending is None:
            return
        last, family, result, health_t = pending
        if loaded.offset >= last:
            await self._after_apply(topic, partition, family, result, health_t, last)

    async def _after_apply(
        self,
        topic: str,
        partition: int,
        family: str,
        result: BatchResult,
        health_t: float,
        offset: int,
    ) -> None:
        """Idempotent writes outside the partition's slot (the health mirror and index);
        then the batch's accounts are no longer due for mirroring: forgotten by the index's
        script where the server holds the mirror, on Cluster by the partition's next write."""
        store = self.store(topic, partition)
        if not await self.health.update(family, result.effects.facts, health_t, store.due(offset)):
            store.release_later(offset)
        self._unfinished.pop((topic, partition), None)

    async def flush_releases(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Forget the mirrored due accounts of these partitions now, not at their next
        batch (the worker calls it when no batch came)."""
        for topic, partition in partitions:
            store = self._stores.get((topic, partition))
            if store is not None:
                await self._redis_retry(
                    store.flush_release, f"forgetting {topic}[{partition}]'s mirrored accounts"
                )

    async def finish_mirrors(self, topic: str, partition: int) -> None:
        """Mirror the facts a worker applied but died before mirroring (waits out outages).

        Called when a partition is assigned and then every few seconds: the
        accounts are listed in the partition's atomic apply, so a crash between
        the apply and the health mirror loses no account's update.
        """
        family = self.family_of(topic)
        if family is None:
            return
        store = self.store(topic, partition)

        async def finish() -> None:
            due = await store.due_mirrors()
            if due is None:
                return
            log.info(
                "%s[%d]: mirroring the health facts of %d account(s) a batch left unmirrored",
                topic,
                partition,
                len(due.facts),
            )
            t = self._health_time(due.stream_time, None)
            if not await self.health.update(family, due.facts, t, store.due(due.up_to)):
                await store.mirrored(due.up_to)

        await self._redis_retry(finish, f"mirroring {topic}[{partition}]'s health facts")

    def _health_time(self, stream_time: float | None, latest: float | None) -> float:
        self.watermark = max(self.watermark, stream_time or 0.0, latest or 0.0)
        return self.clock.batch_time(self.watermark)

    def _parse(
        self, topic: str, messages: Sequence[RawMessage], now: float
    ) -> tuple[list[Offered], list[DeadLetter]]:
        verdicts = parse_events(
            [message.value for message in messages],
            now=now,
            reporting_currency=self.config.currency,
            max_future_seconds=self.max_future_seconds,
            topic=topic,
        )
        events = [v for v in verdicts if type(v) is Event]
        if len(events) == len(verdicts):  # the usual batch: every message valid
            return offer_all([m.offset for m in messages], events), []
        pairs = list(zip(messages, verdicts, strict=True))
        rejected = [DeadLetter(m, v.reason, v.detail) for m, v in pairs if type(v) is Rejected]
        offsets = [m.offset for m, v in pairs if type(v) is Event]
        return offer_all(offsets, events), rejected

    def _fold(
        self, family: str, fresh: list[Offered], loaded: Loaded, t: float, labels: dict[str, str]
    ) -> BatchResult:
        clock = make_clock(self.config, t, advancing=self.clock.follows_events)
        return fold_batch(family, fresh, loaded.batch_input(labels), self.config, clock)

    @staticmethod
    def _letters_of(result: BatchResult, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        if not result.outcome.too_late and not result.outcome.failed:
            return []
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


_PLANNED = frozenset(cls for cls in TYPE_TO_DATA.values() if "plan" in cls.__struct_fields__)
"""Payload types that name a plan (its label is looked up before the fold)."""
_NAME_PLANS = frozenset(FAMILY_OF_TYPE[t] for t, cls in TYPE_TO_DATA.items() if cls in _PLANNED)
"""Families with such payloads (the others skip the per-event look)."""


def _plans_named(family: str, offered: Sequence[Offered]) -> set[str]:
    if family not in _NAME_PLANS:
        return set()
    payloads: list[Any] = [item.event.data for item in offered]
    return {data.plan for data in payloads if type(data) in _PLANNED and data.plan is not None}


def _arrivals(messages: Sequence[RawMessage], offered: Sequence[Offered]) -> dict[str, float]:
    """Event-id digest -> the record timestamp it arrived with (first copy in the batch)."""
    now = time.time()
    stamps = [now if m.timestamp is None or m.timestamp < 0 else m.timestamp for m in messages]
    # the usual batch: every record offered (the items are the records' subsequence, in
    # order, so the same length is the same offsets)
    if len(offered) == len(messages):
        digests = [item.digest for item in offered]
        return dict(zip(reversed(digests), reversed(stamps), strict=True))  # first copy wins
    sent = dict(zip([m.offset for m in messages], stamps, strict=True))
    arrived: dict[str, float] = {}
    for item in offered:
        arrived.setdefault(item.digest, sent[item.offset])
    return arrived


def _after(offered: list[Offered], applied: int) -> list[Offered]:
    """The items past the applied offset (all of them, unless this is a redelivery)."""
    if not offered or offered[0].offset > applied:
        return offered
    return [o for o in offered if o.offset > applied]
