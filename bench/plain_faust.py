"""The baseline: what a textbook Faust app does with the same four topics.

One agent per topic, ``async for value in stream``, one Redis write per
event (``HINCRBY`` of a per-topic, per-type counter). Faust's defaults are
kept except what is needed to run at all: the broker URL, no web server,
a private data directory (Faust writes one into the working directory by
default), reading from the earliest offset and raw bytes as values. The
benchmark measures progress by summing the counters in :data:`COUNTERS`.

Configured from the environment because ``faust -A bench.plain_faust``
imports this module by name: ``BENCH_KAFKA_BOOTSTRAP``, ``BENCH_REDIS_URL``,
``BENCH_TOPIC_PREFIX``, ``BENCH_APP_ID`` and ``BENCH_DATADIR``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import faust
import orjson
from redis.asyncio import Redis

from bench.throughput import PLAIN_FAUST_COUNTERS
from streams.config import FAMILY_TOPICS

COUNTERS = PLAIN_FAUST_COUNTERS
"""Hash of ``<topic>:<event type>`` -> events seen; its sum is the progress."""


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"plain_faust: set {name}")
    return value


def make_app() -> faust.App:
    """Build the app with one counting agent per topic."""
    app = faust.App(
        _env("BENCH_APP_ID"),
        broker=f"kafka://{_env('BENCH_KAFKA_BOOTSTRAP')}",
        web_enabled=False,
        datadir=os.environ.get("BENCH_DATADIR") or tempfile.mkdtemp(prefix="plain-faust-"),
        consumer_auto_offset_reset="earliest",
    )
    redis = Redis.from_url(_env("BENCH_REDIS_URL"))
    prefix = _env("BENCH_TOPIC_PREFIX")
    for family in FAMILY_TOPICS:
        _add_agent(app, redis, f"{prefix}{family}")
    return app


def _add_agent(app: faust.App, redis: Redis, topic_name: str) -> None:
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")

    async def count(stream: Any) -> None:
        async for value in stream:
            kind = orjson.loads(value).get("type", "?")
            await redis.hincrby(COUNTERS, f"{topic_name}:{kind}", 1)

    app.agent(topic, name=f"plain.{topic_name}")(count)


_app: faust.App | None = None


def __getattr__(name: str) -> faust.App:
    """Build ``app`` on first access, so importing :data:`COUNTERS` needs no environment."""
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        _app = make_app()
    return _app
