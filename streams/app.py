"""The worker: Kafka batches in, one atomic Redis apply per partition batch, dead letters out.

Consumption is aiokafka's ``getmany``: whole batches go to the shared
:class:`~streams.processor.Processor` with no per-message framework path.
Redis is the source of truth for progress: a :class:`ResumeFromRedis`
listener seeks every assigned partition to Redis's applied offset + 1, and
Kafka commits, which trail Redis, exist for lag tools. In a backlog two batches
of disjoint partitions are in flight, so one's Python work overlaps the other's
Redis work. SIGTERM is graceful: the batches in hand are finished, offsets are
committed and the group is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from redis.asyncio import Redis

from aggregators.clock import clock_named
from aggregators.health import HealthConfig
from streams import telemetry
from streams.config import FAMILY_TOPICS, Settings
from streams.kafka_options import client_options
from streams.memory import Trimmer, freeze_startup_objects, map_large_allocations
from streams.plan_wait import Hold
from streams.processor import DeadLetter, Gap, Processor, RawMessage

log = logging.getLogger("cspulse.app")

DEAD_LETTER_MAX_BYTES = 4 * 1024 * 1024
"""A dead letter larger than this (or than the broker accepts) goes out truncated."""

PARTITION_FETCH_BYTES = DEAD_LETTER_MAX_BYTES + 65536
"""Largest fetch per partition: a record up to the dead-letter limit fits in one."""

FETCH_MAX_BYTES = 2 * PARTITION_FETCH_BYTES
"""Largest fetch response, all partitions together (aiokafka's default is 50 MiB).

A response is held in memory until its records are consumed, so this bounds the
burst the worker holds at once, which its resident size follows. About 8 MiB is
thousands of events, more than a batch (``CSPULSE_BATCH_MAX``, 2,000), and still
holds a record of the largest size."""

COMMIT_INTERVAL = 2.0
"""Seconds between Kafka commits of what Redis holds (for lag tools only)."""

PROGRESS_INTERVAL = 5.0
"""Seconds between catch-up progress lines while the worker is behind."""

HOLD_SECONDS = 0.2
"""Pause of a partition whose next events wait for their billing partition."""

END_CACHE_SECONDS = 1.0
"""How long a billing partition's end offset from the broker is taken as current."""

END_TIMEOUT_SECONDS = 5.0

CAUGHT_UP_SECONDS = 2.0
"""Lag worth less than this much work at the current rate is live traffic, not a backlog."""

IN_FLIGHT_BATCHES = 3
"""Batches applied at once: one's Python work overlaps the others' Redis work (three
drained a backlog 1.09x - 1.10x faster than two in two runs; docs/benchmarks.md)."""

FETCHED_ENDS: contextvars.ContextVar[dict[TopicPartition, int] | None] = contextvars.ContextVar(
    "fetched_ends", default=None
)
"""The owned billing partitions' log ends when the batch being applied was fetched."""


class InFlight(NamedTuple):
    """A batch being applied: its partitions, and whether its billing ones are applied."""

    partitions: frozenset[TopicPartition]
    billed: asyncio.Event

    def has(self, topic: str) -> bool:
        return any(tp.topic == topic for tp in self.partitions)


def _append_after(
    held: list[ConsumerRecord[Any, Any]], records: Iterable[ConsumerRecord[Any, Any]]
) -> int:
    """Append the records past the last one held (a rebalance in between may have moved
    the position back); how many were appended."""
    last = held[-1].offset if held else -1
    before = len(held)
    held.extend(r for r in records if r.offset > last)
    return len(held) - before


class Worker:
    """Wires settings, Redis, the processor, the consumer and the dead-letter producer."""

    def __init__(self, settings: Settings, bootstrap: str, redis: Redis) -> None:
        self.settings = settings
        options = client_options(settings, bootstrap)
        self.consumer = AIOKafkaConsumer(
            group_id=settings.app_id,
            client_id=f"{settings.app_id}-worker",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_max,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            fetch_max_bytes=FETCH_MAX_BYTES,
            session_timeout_ms=int(settings.session_timeout * 1000),
            heartbeat_interval_ms=int(max(0.5, settings.session_timeout / 10) * 1000),
            rebalance_timeout_ms=int(max(10.0, settings.session_timeout * 2) * 1000),
            **options,
        )
        self.producer = AIOKafkaProducer(
            client_id=f"{settings.app_id}-deadletter",
            acks="all",
            linger_ms=5,
            max_request_size=DEAD_LETTER_MAX_BYTES + 65536,
            **options,
        )
        self.processor = Processor(
            redis,
            settings.metric_config(),
            self.send_dead_letters,
            family_of=settings.family_of,
            clock=clock_named(settings.clock),
            health=HealthConfig.load(settings.health_config),
            plan_ends=self.plan_end,
            plan_wait_max=settings.plan_wait_max,
            error_cap=settings.processing_error_cap,
        )
        self._plan_ends: dict[TopicPartition, tuple[int, float]] = {}
        self._held: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        """Records taken from the consumer and not applied yet, in order: of paused
        partitions that wait for their billing partition, or set aside while other
        partitions' batches were in flight."""
        self._in_flight: dict[asyncio.Task[None], InFlight] = {}
        """Batches being applied, oldest first."""
        self.stopping = asyncio.Event()
        self._applied: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._progress = Progress()
        self._trimmer = Trimmer()
        telemetry.initialize({f: settings.topic(f) for f in FAMILY_TOPICS})

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())

    async def run(self) -> None:
        """Consume until :attr:`stopping` is set, then leave the group cleanly."""
        map_large_allocations()
        await self.producer.start()
        try:
            await self.consumer.start()
            try:
                self.consumer.subscribe(
                    [self.settings.topic(f) for f in FAMILY_TOPICS], listener=ResumeFromRedis(self)
                )
                freeze_startup_objects()
                await self._consume()
            finally:
                await self._commit(force=True)
                await self.consumer.stop()
        finally:
            await self.producer.stop()
        log.info("worker stopped: batches in hand finished, offsets committed, group left")

    def stop_on_signals(self) -> None:
        """SIGTERM and SIGINT finish the batches in hand, then stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)

    async def _consume(self) -> None:
        next_commit = time.monotonic() + COMMIT_INTERVAL
        try:
            while not self.stopping.is_set():
                await self._start_next_batch()
                if time.monotonic() >= next_commit:
                    await self._settle_in_flight()
                    await self._rewind_where_redis_is_behind()
                    await self._finish_mirrors(self.assignment())
                    await self._commit()
                    self._progress.report(self._lag_by_topic())
                    self._trimmer.maybe_trim()
                    next_commit = time.monotonic() + COMMIT_INTERVAL
        except BaseException:
            self._cancel_in_flight()
            raise
        await self._settle_in_flight()

    def _cancel_in_flight(self) -> None:
        """On a failure, stop the other batches rather than wait for them: each apply is
        atomic in Redis, and the restart resumes from what Redis holds."""
        for task in self._in_flight:
            task.cancel()

    async def _start_next_batch(self) -> None:
        """Start applying the next batch, or wait for one in flight to finish.

        In a backlog a batch's Python work overlaps the previous batch's Redis work: the
        next batch is taken from the records the consumer already holds for partitions
        not in flight, and starts while the previous one is applied, when it is at least
        half of ``batch_max`` (smaller ones are set aside and topped up, so a steady rate
        keeps its full batches). Partitions are never in two batches at once."""
        if len(self._in_flight) >= IN_FLIGHT_BATCHES:
            await self._finish_one_in_flight()
            return
        busy = self._busy_partitions()
        batch = await self._next_batch(busy)
        if batch and (not self._in_flight or self._fills_half(batch)):
            self._launch(batch)
        elif batch:
            self._set_aside(batch)
            await self._finish_one_in_flight()
        elif self._in_flight:
            await self._finish_one_in_flight()
        else:
            owned = sorted((tp.topic, tp.partition) for tp in self.assignment())
            await self.processor.flush_releases(owned)

    def _fills_half(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> bool:
        return sum(map(len, batch.values())) * 2 >= self.settings.batch_max

    def _set_aside(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Keep records taken while other batches were in flight for the next batch, in
        front of what the consumer hands out then (its position is past them)."""
        for tp, records in batch.items():
            self._held[tp] = records

    def _busy_partitions(self) -> set[TopicPartition]:
        return {tp for batch in self._in_flight.values() for tp in batch.partitions}

    def _launch(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Apply the batch in a task of its own, which sees the billing log ends of its
        fetch (called right after it, with no await between) and applies its other
        partitions after the billing of every batch before."""
        plans = self.processor.config.plan_topic
        before = [f.billed for f in self._in_flight.values() if f.has(plans)]
        billed = asyncio.Event()
        context = contextvars.copy_context()
        context.run(FETCHED_ENDS.set, self._billing_highwaters())
        task = asyncio.create_task(self.apply(batch, before, billed), context=context)
        self._in_flight[task] = InFlight(frozenset(batch), billed)

    async def _finish_one_in_flight(self) -> None:
        """Wait for the oldest batch in flight; its failure stops the worker."""
        oldest = next(iter(self._in_flight))
        try:
            await asyncio.shield(oldest)
        finally:
            for task in [t for t in self._in_flight if t.done()]:
                del self._in_flight[task]
                task.result()

    async def _settle_in_flight(self) -> None:
        """Finish every batch in flight (on stop, and before the periodic offset checks,
        mirrors and commit, which must not race an apply)."""
        while self._in_flight:
            await self._finish_one_in_flight()

    async def _next_batch(
        self, busy: set[TopicPartition]
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Records of the owned partitions not ``busy`` (in flight): what the consumer
        holds, topped up for up to ``batch_within`` seconds while under ``batch_max``.

        A batch costs a partition about a millisecond of CPU whatever its size, so at a
        steady rate a short wait buys larger, cheaper batches; in a backlog the first
        fetch fills the batch and nothing waits. With batches in flight nothing waits:
        only records the consumer already holds are taken. Partitions lost to a
        rebalance meanwhile are left out (Redis's offset fence would refuse them anyway)."""
        limit = self.settings.batch_max
        free = [tp for tp in self.assignment() if tp not in busy]
        if busy and not free:
            return {}
        batch = await self.consumer.getmany(
            *free if busy else (), timeout_ms=0 if busy else 200, max_records=limit
        )
        self._take_back_held(batch, busy)
        count = sum(map(len, batch.values()))
        deadline = time.monotonic() + self.settings.batch_within
        while batch and count < limit and not busy and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait_ms = math.ceil(left * 1000)
            more = await self.consumer.getmany(timeout_ms=wait_ms, max_records=limit - count)
            for tp, records in more.items():
                count += _append_after(batch.setdefault(tp, []), records)
        if batch:
            await self._drain_billing(batch, busy)
        owned = self.assignment()
        return {tp: records for tp, records in batch.items() if tp in owned}

    async def _drain_billing(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        busy: set[TopicPartition],
    ) -> None:
        """Add the billing records the consumer already holds, up to ``batch_max`` more:
        the other partitions' events wait until their billing partition is applied to its
        end, and records fetched but left in the consumer would make them wait a batch
        longer."""
        paused = self.consumer.paused()
        billing = [tp for tp in self._owned_billing() if tp not in paused and tp not in busy]
        if billing:
            more = await self.consumer.getmany(*billing, timeout_ms=0)
            for tp, records in more.items():
                _append_after(batch.setdefault(tp, []), records)

    def _take_back_held(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        busy: set[TopicPartition],
    ) -> None:
        """Put the held records of partitions whose pause ended (or that were set aside) in
        front of their new ones (the consumer's position is past them: they are not
        fetched again)."""
        paused = self.consumer.paused()
        for tp in [tp for tp in self._held if tp not in paused and tp not in busy]:
            held = self._held.pop(tp)
            _append_after(held, batch.get(tp, ()))
            batch[tp] = held

    async def _rewind_where_redis_is_behind(self) -> None:
        """Re-read partitions whose applied offset Redis lost (restore, failover to a
        lagging replica), even those with no new message to reveal the gap. All
        partitions are read at once: one round trip, not one each."""
        applied_by_tp = list(self._applied.items())
        held_by_tp = await asyncio.gather(
            *(self.processor.applied_offset(tp.topic, tp.partition) for tp, _ in applied_by_tp)
        )
        for (tp, applied), held in zip(applied_by_tp, held_by_tp, strict=True):
            if held < applied and tp in self.assignment():
                log.warning(
                    "%s[%d]: Redis holds offset %d but %d was applied: Redis went back in "
                    "time; re-reading from %d",
                    tp.topic,
                    tp.partition,
                    held,
                    applied,
                    held + 1,
                )
                self._applied[tp] = held
                if held >= 0:
                    self._seek(tp, held + 1)
                else:
                    await self._seek_to_beginning(tp)

    async def _finish_mirrors(self, partitions: Iterable[TopicPartition]) -> None:
        """Mirror health facts a worker that died after its apply left unmirrored. All
        partitions at once: checking them is one round trip, not one each."""
        await asyncio.gather(
            *(self.processor.finish_mirrors(tp.topic, tp.partition) for tp in sorted(partitions))
        )

    async def apply(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        billed_before: Sequence[asyncio.Event] = (),
        billed: asyncio.Event | None = None,
    ) -> None:
        """Partitions are independent (own keys, own offset): they apply concurrently,
        billing first, so that the others find the plans of their batch (and of the
        batches in flight before it) applied and need not wait for them (per-plan
        attribution by event time)."""
        plans = self.processor.config.plan_topic
        try:
            await self._apply_partitions(batch, lambda tp: tp.topic == plans)
        finally:
            if billed is not None:
                billed.set()
        for event in billed_before:
            await event.wait()
        await self._apply_partitions(batch, lambda tp: tp.topic != plans)

    async def _apply_partitions(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        chosen: Callable[[TopicPartition], bool],
    ) -> None:
        await asyncio.gather(
            *(self._apply_partition(tp, records) for tp, records in batch.items() if chosen(tp))
        )

    async def _apply_partition(
        self, tp: TopicPartition, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> None:
        messages = [
            RawMessage(r.offset, r.key, r.value or b"", r.timestamp / 1000) for r in records
        ]
        result = await self.processor.process(tp.topic, tp.partition, messages)
        if isinstance(result, Gap):
            self._seek(tp, result.resume_at)
            return
        if isinstance(result, Hold):
            self._hold(tp, [r for r in records if r.offset >= result.resume_at])
            if result.resume_at - 1 <= self._applied.get(tp, -1):
                return
            result = result.resume_at - 1
        self._progress.count(sum(1 for m in messages if m.offset <= result))
        self._applied[tp] = result
        self._report_lag(tp, result)

    def _hold(self, tp: TopicPartition, waiting: list[ConsumerRecord[Any, Any]]) -> None:
        """Keep the records that wait for their billing partition and pause the partition
        briefly; then they are applied again, in front of what came meanwhile."""
        telemetry.PLAN_WAITS.labels(tp.topic).inc()
        self._held[tp] = waiting
        self.consumer.pause(tp)
        asyncio.get_running_loop().call_later(HOLD_SECONDS, self._release, tp)

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        """Read the partition from ``offset`` next; records held for it are dropped."""
        self._held.pop(tp, None)
        self.consumer.seek(tp, offset)

    async def _seek_to_beginning(self, tp: TopicPartition) -> None:
        """Read the partition from its earliest retained offset; records held are dropped."""
        self._held.pop(tp, None)
        await self.consumer.seek_to_beginning(tp)

    def _release(self, tp: TopicPartition) -> None:
        if tp in self.assignment():
            self.consumer.resume(tp)

    def _owned_billing(self) -> list[TopicPartition]:
        plans = self.processor.config.plan_topic
        return [tp for tp in self.assignment() if tp.topic == plans]

    def _billing_highwaters(self) -> dict[TopicPartition, int]:
        owned = self._owned_billing()
        return {tp: high for tp in owned if (high := self.consumer.highwater(tp)) is not None}

    async def plan_end(self, topic: str, partition: int) -> int | None:
        """A billing partition's log end offset when the batch being applied was fetched: this
        consumer's own view when it reads the partition, else the broker's (cached
        briefly); None when it does not exist.

        The end as of the fetch, not as of now: the consumer keeps fetching while the
        batch is applied, and a billing record that reached Kafka after the batch's
        records were read is one that "reaches Kafka after the events it should have
        covered" (metrics.md, Segments); waiting for it would make live traffic wait."""
        tp = TopicPartition(topic, partition)
        if tp in self.assignment():
            high = (FETCHED_ENDS.get() or {}).get(tp, self.consumer.highwater(tp))
            if high is not None:
                return int(high)
        cached = self._plan_ends.get(tp)
        if cached is not None and time.monotonic() - cached[1] < END_CACHE_SECONDS:
            return cached[0]
        if partition not in (self.consumer.partitions_for_topic(topic) or ()):
            return None
        try:
            ends = await asyncio.wait_for(self.consumer.end_offsets([tp]), END_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError) as exc:
            log.info(
                "end offset of %s[%d] not known (%s); not waiting for it", topic, partition, exc
            )
            return None
        end = int(ends[tp])
        self._plan_ends[tp] = (end, time.monotonic())
        return end

    def _report_lag(self, tp: TopicPartition, applied: int) -> None:
        high = self.consumer.highwater(tp)
        if high is not None:
            telemetry.LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - applied - 1))

    def _lag_by_topic(self) -> dict[str, int]:
        lag: dict[str, int] = {}
        for tp in self.assignment():
            high, applied = self.consumer.highwater(tp), self._applied.get(tp)
            if high is not None and applied is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - applied - 1)
        return lag

    async def _commit(
        self, force: bool = False, only: Iterable[TopicPartition] | None = None
    ) -> None:
        """Commit what Redis holds for the partitions still assigned (best effort)."""
        owned = self.assignment() if only is None else set(only)
        offsets = {
            tp: applied + 1
            for tp, applied in self._applied.items()
            if tp in owned and (force or self._committed.get(tp) != applied)
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self._committed.update({tp: o - 1 for tp, o in offsets.items()})
        except KafkaError as exc:
            log.info("Kafka commit skipped (%s); Redis keeps the applied offsets", exc)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish the batches in flight, commit the partitions leaving, forget their lag
        series. A batch's failure is left for the consume loop to raise."""
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(max(1.0, self.settings.session_timeout / 2)):
                if self._in_flight:
                    await asyncio.wait(list(self._in_flight))
                await self._commit(force=True, only=revoked)
        for tp in revoked:
            self._held.pop(tp, None)
            self._applied.pop(tp, None)
            self._committed.pop(tp, None)
            with contextlib.suppress(KeyError):
                telemetry.LAG.remove(tp.topic, str(tp.partition))

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Seek every assigned partition to Redis's applied offset + 1, after mirroring
        what its previous owner applied but did not mirror."""
        await self._finish_mirrors(assigned)
        for tp in sorted(assigned):
            applied = await self.processor.applied_offset(tp.topic, tp.partition)
            if applied >= 0:
                self._seek(tp, applied + 1)
                self._applied[tp] = applied
                log.info(
                    "resuming %s[%d] at offset %d (from Redis)", tp.topic, tp.partition, applied + 1
                )
                continue
            committed = await self.consumer.committed(tp)
            if committed:
                log.warning(
                    "%s[%d]: Kafka committed offset %d but Redis holds no progress for it: "
                    "Redis lost its data. Re-reading the partition from its earliest retained "
                    "offset to rebuild the state.",
                    tp.topic,
                    tp.partition,
                    committed,
                )
            await self._seek_to_beginning(tp)

    async def send_dead_letters(
        self, topic: str, partition: int, letters: Sequence[DeadLetter]
    ) -> None:
        """Publish the original bytes with headers naming where they came from and why."""
        for letter in letters:
            try:
                await self._send_letter(topic, partition, letter, letter.message.value)
            except MessageSizeTooLargeError:
                # the producer or broker refuses the original bytes: keep the head, say so
                head = letter.message.value[:65536]
                await self._send_letter(topic, partition, letter, head, truncated=True)

    async def _send_letter(
        self, topic: str, partition: int, letter: DeadLetter, value: bytes, truncated: bool = False
    ) -> None:
        headers = [
            ("cs-source-topic", topic.encode()),
            ("cs-source-partition", str(partition).encode()),
            ("cs-source-offset", str(letter.message.offset).encode()),
            ("cs-reason", letter.reason.encode()),
            ("cs-detail", letter.detail.encode()[:500]),
        ]
        if truncated:
            headers.append(("cs-truncated-from-bytes", str(len(letter.message.value)).encode()))
        await self.producer.send_and_wait(
            self.settings.deadletter_topic, value=value, key=letter.message.key, headers=headers
        )


class ResumeFromRedis(ConsumerRebalanceListener):  # type: ignore[misc]
    """Redis leads: every assigned partition resumes where Redis says, not where Kafka does."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker.on_assigned(set(assigned))


class Progress:
    """Logs catch-up progress (events/s, lag per topic, ETA) every few seconds while behind.

    Behind means more than CAUGHT_UP_SECONDS of work at the current rate, so a
    worker that keeps up with live traffic stays quiet.
    """

    def __init__(self) -> None:
        self._events = 0
        self._since = time.monotonic()

    def count(self, events: int) -> None:
        self._events += events

    def report(self, lag: dict[str, int]) -> None:
        now = time.monotonic()
        if now - self._since < PROGRESS_INTERVAL:
            return
        rate = self._events / (now - self._since)
        self._events, self._since = 0, now
        behind = sum(lag.values())
        if behind == 0 or (rate > 0 and behind < rate * CAUGHT_UP_SECONDS):
            return  # live traffic: a few events in flight is not catching up
        eta = f"{behind / rate:.0f}s" if rate > 0 else "unknown"
        per_topic = ", ".join(f"{topic} {n}" for topic, n in sorted(lag.items()) if n)
        log.info("catching up: %.0f events/s, lag %s, ETA %s", rate, per_topic, eta)
