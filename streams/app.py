"""The Faust app: one agent per event topic, batching into the processor.

Each agent takes events in batches (``take_events``), splits them by
partition and hands each partition's messages to the shared
:class:`~streams.processor.Processor`, which applies them to Redis in one
atomic step. Faust acks (and later commits) a batch only after that step,
so Kafka's committed offsets trail Redis, the source of truth for progress:
after each rebalance every partition resumes at Redis's applied offset + 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.types import TP, EventT, StreamT
from redis.asyncio import Redis

from aggregators.health import HealthConfig
from streams import telemetry
from streams.config import FAMILY_TOPICS, Settings
from streams.processor import DeadLetter, Processor, RawMessage

log = logging.getLogger("cspulse.app")

DEAD_LETTER_MAX_BYTES = 4 * 1024 * 1024
"""A dead letter larger than this (or than the broker accepts) goes out truncated."""


def faust_settings(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """Faust settings tuned for batch throughput (see docs/architecture.md)."""
    return {
        "broker": f"kafka://{bootstrap.split(',')[0]}",
        "broker_consumer": [f"kafka://{h}" for h in bootstrap.split(",")],
        "broker_producer": [f"kafka://{h}" for h in bootstrap.split(",")],
        "web_enabled": False,
        "datadir": tempfile.mkdtemp(prefix="cspulse-faust-"),
        "store": "memory://",
        "topic_disable_leader": True,
        "topic_allow_declare": False,
        "consumer_auto_offset_reset": "earliest",
        "broker_max_poll_records": max(settings.batch_max, 500),
        "stream_buffer_maxsize": max(4 * settings.batch_max, 4096),
        "broker_commit_every": 10_000,
        "broker_commit_interval": 2.0,
        "producer_acks": -1,
        "producer_linger": 0.005,
        "producer_max_request_size": DEAD_LETTER_MAX_BYTES + 65536,
        "stream_wait_empty": False,
        "broker_session_timeout": settings.session_timeout,
        "broker_heartbeat_interval": max(0.5, settings.session_timeout / 10),
        "broker_rebalance_timeout": max(10.0, settings.session_timeout * 2),
    }


class Worker:
    """Wires settings, Redis, the processor and the Faust agents together."""

    def __init__(self, settings: Settings, bootstrap: str, redis: Redis) -> None:
        self.settings = settings
        self.app = faust.App(settings.app_id, **faust_settings(settings, bootstrap))
        self.deadletter = self.app.topic(
            settings.deadletter_topic, key_serializer="raw", value_serializer="raw"
        )
        self.processor = Processor(
            redis,
            settings.metric_config(),
            self.send_dead_letters,
            family_of=settings.family_of,
            clock=settings.clock,
            health=HealthConfig.load(settings.health_config),
        )
        for family in FAMILY_TOPICS:
            self._add_agent(family)
        telemetry.initialize({f: settings.topic(f) for f in FAMILY_TOPICS})
        self.app.on_rebalance_complete.connect(self._resume_from_redis)  # type: ignore[arg-type]
        self.app.on_partitions_revoked.connect(self._forget_lag)  # type: ignore[arg-type]

    def _add_agent(self, family: str) -> None:
        topic = self.app.topic(
            self.settings.topic(family), key_serializer="raw", value_serializer="raw"
        )

        async def consume(stream: StreamT[bytes]) -> None:
            async for events in stream.take_events(  # type: ignore[attr-defined]
                self.settings.batch_max, within=self.settings.batch_within
            ):
                await self.apply_events(events)

        self.app.agent(topic, name=f"cspulse.{family}")(consume)

    async def apply_events(self, events: Sequence[EventT[bytes]]) -> None:
        """Group a taken batch by partition, apply each, then report lag."""
        by_tp: defaultdict[TP, list[RawMessage]] = defaultdict(list)
        for event in events:
            msg = event.message
            by_tp[msg.tp].append(RawMessage(msg.offset, msg.key, msg.value or b""))
        await asyncio.gather(*(self._apply_partition(tp, msgs) for tp, msgs in by_tp.items()))

    async def _apply_partition(self, tp: TP, messages: list[RawMessage]) -> None:
        """Partitions are independent (own keys, own offset): they apply concurrently."""
        messages.sort(key=lambda m: m.offset)
        applied = await self.processor.process(tp.topic, tp.partition, messages)
        self._report_lag(tp, applied)

    def _report_lag(self, tp: TP, applied: int) -> None:
        try:
            high = self.app.consumer.highwater(tp)
        except Exception:  # not known yet right after assignment
            return
        if high is not None:
            telemetry.LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - applied - 1))

    async def send_dead_letters(
        self, topic: str, partition: int, letters: Sequence[DeadLetter]
    ) -> None:
        """Publish the original bytes with headers naming where they came from and why."""
        for letter in letters:
            try:
                await self._send_letter(topic, partition, letter, letter.message.value)
            except (MessageSizeTooLargeError, ProducerSendError) as exc:
                if not _too_large(exc):
                    raise
                # the producer or broker refuses the original bytes: keep the head, say so
                head = letter.message.value[:65536]
                await self._send_letter(topic, partition, letter, head, truncated=True)

    async def _send_letter(
        self, topic: str, partition: int, letter: DeadLetter, value: bytes, truncated: bool = False
    ) -> None:
        headers = {
            "cs-source-topic": topic.encode(),
            "cs-source-partition": str(partition).encode(),
            "cs-source-offset": str(letter.message.offset).encode(),
            "cs-reason": letter.reason.encode(),
            "cs-detail": letter.detail.encode()[:500],
        }
        if truncated:
            headers["cs-truncated-from-bytes"] = str(len(letter.message.value)).encode()
        future = await self.deadletter.send(key=letter.message.key, value=value, headers=headers)
        await future

    async def _forget_lag(self, app: faust.App, revoked: set[TP], **_: Any) -> None:
        """A partition this worker gave away is another worker's to report."""
        for tp in revoked:
            with contextlib.suppress(KeyError):
                telemetry.LAG.remove(tp.topic, str(tp.partition))

    async def _resume_from_redis(self, app: faust.App, **_: Any) -> None:
        """Make every assigned partition resume at Redis's applied offset + 1.

        Redis leads: after a Redis crash under AOF everysec it can be behind
        Kafka's committed offset. Faust sends ``on_rebalance_complete`` just
        before it seeks each partition to its committed offset, so committing
        Redis's position here makes that seek land where Redis says.
        """
        positions: dict[TP, int] = {}
        for tp in app.consumer.assignment():
            if self.settings.family_of(tp.topic) is None:
                continue
            applied = await self.processor.applied_offset(tp.topic, tp.partition)
            if applied >= 0:
                positions[tp] = applied + 1
        if positions:
            await app.consumer._commit(positions)  # type: ignore[attr-defined]
            for tp, position in sorted(positions.items()):
                log.info(
                    "resuming %s[%d] at offset %d (from Redis)", tp.topic, tp.partition, position
                )


def _too_large(exc: BaseException | None) -> bool:
    """Whether a send failed because the message is too large (Faust wraps the cause)."""
    while exc is not None:
        if isinstance(exc, MessageSizeTooLargeError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
