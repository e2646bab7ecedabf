"""Session-wide real broker and Redis; each test gets fresh topics and an empty Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.config import Settings
from streams.demo.embedded import start_broker, start_redis
from streams.topics import create_topics
from tests.harness import Stack

_names = itertools.count(1)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    broker = start_broker(workdir)
    redis_proc = start_redis(workdir, persist=True)
    stack = Stack(f"127.0.0.1:{broker.port}", f"redis://127.0.0.1:{redis_proc.port}/0", workdir)
    stack.processes = {"broker": broker, "redis": redis_proc}  # type: ignore[attr-defined]
    try:
        yield stack
    finally:
        for worker in stack.workers:
            worker.kill()
        redis_proc.stop()
        broker.stop()


def fresh_names(stack: Stack) -> tuple[str, str]:
    """A fresh topic prefix and consumer group; topics created with 2 partitions; Redis flushed.

    Workers an earlier test left running (it failed before stopping them) are
    killed first: one would see its progress flushed, re-read its topics and
    write them into this test's Redis, where the readers sum every partition.
    """
    n = next(_names)
    prefix, group = f"t{n}.", f"cspulse-test-{n}"
    for worker in stack.workers:
        worker.kill()
    stack.redis().flushall()
    asyncio.run(create_topics(Settings(topic_prefix=prefix, partitions=2), stack.bootstrap))
    return prefix, group


@pytest.fixture
def names(stack: Stack) -> tuple[str, str]:
    return fresh_names(stack)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "integration":
            item.add_marker(pytest.mark.integration)
