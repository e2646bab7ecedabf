"""Real services for integration tests: the Tansu broker, redis-server, cspulse workers.

Nothing here is a fake: the broker speaks the Kafka protocol, Redis is a
real server, the worker is the ``cspulse worker`` command in a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streams.demo.embedded import free_port

MetricKey = tuple[str, tuple[tuple[str, str], ...]]
Message = tuple[str, bytes | None, bytes]
"""(topic, key, value) to publish."""


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int
    value: bytes


async def _publish(bootstrap: str, messages: Sequence[Message]) -> list[Published]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        records = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [
        Published(r.topic, r.partition, r.offset, m[2])
        for r, m in zip(records, messages, strict=True)
    ]


def publish(bootstrap: str, messages: Sequence[Message]) -> list[Published]:
    """Publish (topic, key, value) in order; returns where each landed."""
    return asyncio.run(_publish(bootstrap, messages))


async def _publish_paced(
    bootstrap: str, rounds: Sequence[Sequence[Message]], pause: float
) -> list[Published]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    landed: list[Published] = []
    try:
        for messages in rounds:
            for topic, key, value in messages:
                record = await producer.send_and_wait(topic, value, key=key)
                landed.append(Published(record.topic, record.partition, record.offset, value))
            await asyncio.sleep(pause)
    finally:
        await producer.stop()
    return landed


def publish_paced(
    bootstrap: str, rounds: Sequence[Sequence[Message]], pause: float
) -> list[Published]:
    """Live traffic: each round's (topic, key, value) in order, each in Kafka before the
    next is sent, ``pause`` seconds between rounds, through one producer. (:class:`Publisher`
    sends each part as one batch, from a thread, for faults under load; here the order
    across topics is what a test relies on.)"""
    return asyncio.run(_publish_paced(bootstrap, rounds, pause))


async def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(records) < expected:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                records.extend(msgs)
        # a little longer, to see anything beyond what was expected
        batch = await consumer.getmany(timeout_ms=1000)
        for msgs in batch.values():
            records.extend(msgs)
    finally:
        await consumer.stop()
    return records


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    return asyncio.run(_consume_all(bootstrap, topic, expected, timeout))


def last_offsets(published: Iterable[Published]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for p in published:
        out[(p.topic, p.partition)] = max(out.get((p.topic, p.partition), -1), p.offset)
    return out


def applied_offsets(
    client: redis.Redis, topics: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    out = {}
    for topic, partition in topics:
        raw = client.hget(f"cs:{{{topic}:{partition}}}:meta", "offset")
        out[(topic, partition)] = int(raw) if raw is not None else -1
    return out


def applied_more(
    client: redis.Redis, topics: list[tuple[str, int]], where: str, timeout: float = 10
) -> dict[tuple[str, int], int]:
    """Waits until ``client`` holds later applied offsets than now; returns them."""
    before = applied_offsets(client, topics)
    deadline = time.monotonic() + timeout
    while (now := applied_offsets(client, topics)) == before:
        assert time.monotonic() < deadline, f"the workers applied nothing on {where}"
        time.sleep(0.02)
    return now


def mirrors_due(client: redis.Redis, topics: Iterable[tuple[str, int]]) -> bool:
    """Whether a partition has applied facts not yet mirrored into the health keys."""
    return any(client.exists(f"cs:{{{t}:{p}}}:mirror_due") for t, p in topics)


def wait_applied(
    client: redis.Redis, expected: dict[tuple[str, int], int], timeout: float = 120
) -> None:
    """Block until Redis records every partition as applied up to its last offset, and
    the health facts of its batches as mirrored (the mirror follows the apply).

    A poll refused during a failover (the node just killed, a cluster still
    electing) is retried: the test waits for the data, not for one node."""
    deadline = time.monotonic() + timeout
    current: dict[tuple[str, int], int] = {}
    while True:
        try:
            current = applied_offsets(client, expected)
            due = mirrors_due(client, expected)
        except (redis.ConnectionError, redis.exceptions.ClusterDownError):
            current, due = current or {k: -1 for k in expected}, True
        if all(current[k] >= v for k, v in expected.items()) and not due:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not applied in {timeout}s: have {current}, want {expected}")
        time.sleep(0.2)


def wait_progress(
    client: redis.Redis, topics: Iterable[tuple[str, int]], timeout: float = 30
) -> None:
    """Until some partition has applied events: the workers are busy."""
    topics = list(topics)
    deadline = time.monotonic() + timeout
    while max(applied_offsets(client, topics).values(), default=-1) < 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing applied in {timeout}s on {topics}")
        time.sleep(0.1)


def wait_ready(workers: Iterable[WorkerProcess], timeout: float = 60) -> None:
    """Until every worker answers ``/readyz`` 200 (it holds partitions): the group has
    settled, so a fault injected next does not coincide with the first rebalance."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        while http_status(worker.port, "/readyz") != 200:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not ready in {timeout}s:\n{worker.tail()}")
            time.sleep(0.2)


class Publisher(threading.Thread):
    """Publishes ``parts`` in turn, ``pause`` seconds apart, so a fault injected while
    it runs lands under load; :meth:`finish` joins it and returns where each landed."""

    def __init__(
        self,
        bootstrap: str,
        parts: Sequence[Sequence[Message]],
        pause: float = 0.5,
    ) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.parts, self.pause = bootstrap, parts, pause
        self.published: list[Published] = []
        self.error: BaseException | None = None

    @classmethod
    def in_parts(cls, bootstrap: str, messages: Sequence[Message], parts: int) -> Publisher:
        size = -(-len(messages) // parts)
        return cls(bootstrap, [messages[i : i + size] for i in range(0, len(messages), size)])

    def run(self) -> None:
        try:
            for part in self.parts:
                self.published += publish(self.bootstrap, part)
                time.sleep(self.pause)
        except BaseException as exc:  # raised again by finish(), in the test's thread
            self.error = exc

    def finish(self, timeout: float = 60) -> list[Published]:
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"publishing did not finish in {timeout}s")
        if self.error is not None:
            raise self.error
        return self.published


def scrape(port: int) -> dict[MetricKey, float]:
    """GET /metrics and parse it with prometheus_client's own parser."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    out: dict[MetricKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def redis_retries(scraped: dict[MetricKey, float]) -> float:
    """``cs_redis_retries_total`` of one scrape: applies retried after a Redis error."""
    return sum(v for (name, _), v in scraped.items() if name == "cs_redis_retries_total")


def http_status(port: int, path: str) -> int:
    """Status code of GET ``path`` on the metrics port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class WorkerProcess:
    """A ``cspulse worker`` subprocess with its own metrics port (or another command
    serving ``/healthz`` on ``port``, e.g. ``ingest``)."""

    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    command: str = "worker"
    module: str = "streams"
    """``tests.faulty_worker`` for the command with faults (:mod:`tests.faults`)."""

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, self.command],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.wait_http()
        return self

    def wait_http(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"worker did not serve /healthz in {timeout}s:\n{self.tail()}")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def rereads(self) -> int:
        """How often this worker saw Redis's applied offset go back under it and re-read
        (after a rebalance it resumes from Redis's offsets without saying so)."""
        return self.tail(1_000_000).count("re-reading from")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    """Broker + Redis shared by a test session, and per-test names."""

    bootstrap: str
    redis_url: str
    workdir: Path
    counter: int = 0
    workers: list[WorkerProcess] = field(default_factory=list)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    def worker_env(self, prefix: str, group: str, port: int, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CSPULSE_KAFKA_BOOTSTRAP=self.bootstrap,
            CSPULSE_REDIS_URL=self.redis_url,
            CSPULSE_METRICS_PORT=str(port),
            CSPULSE_TOPIC_PREFIX=prefix,
            CSPULSE_APP_ID=group,
            CSPULSE_CLOCK="watermark",
            CSPULSE_PARTITIONS="2",
            CSPULSE_LOG_LEVEL="info",
        )
        env.update(extra)
        return env

    def new_worker(
        self, prefix: str, group: str, module: str = "streams", **extra: str
    ) -> WorkerProcess:
        port = free_port()
        self.counter += 1
        worker = WorkerProcess(
            self.worker_env(prefix, group, port, **extra),
            port,
            self.workdir / f"worker-{self.counter}.log",
            module=module,
        )
        self.workers.append(worker)
        return worker


def dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
