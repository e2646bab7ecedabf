"""The Quix Streams comparison: JSON decode and a tumbling-window count per account.

What a Quix Streams user writes for "events per account per minute" on the
four topics: one streaming dataframe per topic with the JSON deserializer,
``tumbling_window(1 min).count().final()``, Quix's defaults otherwise (RocksDB
state with changelog topics, at-least-once, commits every 5 s). Windows
follow the Kafka message timestamp, which the benchmark sets to the event
time when it publishes, so the windows are by event time as cspulse's are.

Progress for the benchmark: ``on_message_processed`` counts every message
Quix has processed, and a thread writes the count to Redis
(:data:`PROGRESS`) every 20 ms; that is one Python call per message and one
Redis write per 20 ms, next to nothing against the work measured.

With ``BENCH_QUIX_EVENT_TIME=1`` (the ``quix-et`` variant) the windows take
event time from the payload instead, through a ``timestamp_extractor`` that
parses the CloudEvents ``time`` field: what a Quix user with event-time
metrics and producers that do not stamp records with the event time writes.

Configured from the environment, like :mod:`bench.plain_faust`:
``BENCH_KAFKA_BOOTSTRAP``, ``BENCH_REDIS_URL``, ``BENCH_TOPIC_PREFIX``,
``BENCH_APP_ID``, ``BENCH_DATADIR`` and ``BENCH_QUIX_EVENT_TIME``. Run as
``python -m bench.quix_app``.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta
from typing import Any

import redis
from quixstreams import Application

from bench.raw_client import PROGRESS
from streams.config import FAMILY_TOPICS


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"quix_app: set {name}")
    return value


class Counter:
    """Messages processed, published to Redis from a thread so the hot path only adds 1."""

    def __init__(self, client: redis.Redis) -> None:
        self.count = 0
        self._client = client
        self._stop = threading.Event()

    def processed(self, _topic: str, _partition: int, _offset: int) -> None:
        self.count += 1

    def publish_until_stopped(self, every: float = 0.02) -> None:
        last = -1
        while not self._stop.wait(every):
            if self.count != last:
                last = self.count
                self._client.set(PROGRESS, last)

    def stop(self) -> None:
        self._stop.set()
        self._client.set(PROGRESS, self.count)


def event_time_ms(value: Any, _headers: Any, timestamp: int, _kind: Any) -> int:
    """The CloudEvents ``time`` of a decoded payload, in ms (the record's own when absent)."""
    try:
        return int(datetime.fromisoformat(value["time"]).timestamp() * 1000)
    except (TypeError, KeyError, ValueError):
        return timestamp


def build(counter: Counter) -> Application:
    """The application: one dataframe per topic, each a per-key tumbling-window count."""
    app = Application(
        broker_address=_env("BENCH_KAFKA_BOOTSTRAP"),
        consumer_group=_env("BENCH_APP_ID"),
        auto_offset_reset="earliest",
        state_dir=_env("BENCH_DATADIR"),
        on_message_processed=counter.processed,
        loglevel="WARNING",
    )
    prefix = _env("BENCH_TOPIC_PREFIX")
    by_event_time = os.environ.get("BENCH_QUIX_EVENT_TIME") == "1"
    extractor = event_time_ms if by_event_time else None
    for family in FAMILY_TOPICS:
        topic = app.topic(
            f"{prefix}{family}",
            value_deserializer="json",
            key_deserializer="str",
            timestamp_extractor=extractor,
        )
        # Quix sizes its changelog topics from the source topic's retention, which
        # some brokers (Tansu, used here) do not report: say "unlimited" for them.
        topic.broker_config.extra_config.setdefault("retention.ms", "-1")
        sdf = app.dataframe(topic)
        sdf.tumbling_window(timedelta(minutes=1)).count().final()
    return app


def main() -> None:
    counter = Counter(redis.Redis.from_url(_env("BENCH_REDIS_URL")))
    publisher = threading.Thread(target=counter.publish_until_stopped, daemon=True)
    publisher.start()
    try:
        build(counter).run()
    finally:
        counter.stop()


if __name__ == "__main__":
    main()
