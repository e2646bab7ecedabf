"""Processor tier: :class:`~streams.processor.Processor` against a real redis-server, no broker.

Each test gets its own Redis (so it may make it refuse writes, go read-only
or lose data) and a list-backed dead-letter sink in place of the topic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from aggregators.clock import Clock, clock_named
from streams.config import Settings
from streams.demo.embedded import Process, start_redis
from streams.processor import DeadLetter, Gap, Processor, RawMessage


@dataclass
class LetterBox:
    """Dead letters, as the worker would publish them."""

    letters: list[tuple[str, int, DeadLetter]] = field(default_factory=list)

    async def __call__(self, topic: str, partition: int, letters: Sequence[DeadLetter]) -> None:
        self.letters += [(topic, partition, letter) for letter in letters]


@dataclass
class Rig:
    redis_process: Process
    settings: Settings
    box: LetterBox

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_process.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.redis_process.port, socket_timeout=5)

    def processor(
        self, url: str | None = None, clock: str | Clock = "watermark", error_cap: int = 100
    ) -> Processor:
        from redis.asyncio import Redis

        return Processor(
            Redis.from_url(url or self.url, socket_timeout=5, socket_connect_timeout=2),
            self.settings.metric_config(),
            self.box,
            family_of=self.settings.family_of,
            clock=clock if isinstance(clock, Clock) else clock_named(clock),
            error_cap=error_cap,
        )

    async def process(
        self, processor: Processor, topic: str, messages: Sequence[RawMessage], partition: int = 0
    ) -> int | Gap:
        return await processor.process(self.settings.topic(topic), partition, messages)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    process = start_redis(tmp_path)
    try:
        yield Rig(process, Settings(), LetterBox())
    finally:
        process.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "processor":
            item.add_marker(pytest.mark.integration)
