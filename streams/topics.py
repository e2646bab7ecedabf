"""Create cspulse's topics (idempotent) through the Kafka admin API."""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from streams.config import Settings
from streams.kafka_options import AUTHORIZATION_ERRORS, KafkaSetupError, client_options

DEFAULT_REPLICATION = 3
"""Copies of each partition, as managed Kafka services recommend; capped at the broker count."""


async def create_topics(
    settings: Settings,
    bootstrap: str,
    partitions: int | None = None,
    replication_factor: int | None = None,
) -> list[str]:
    """Create the four event topics and the dead-letter topic; return those created.

    Without ``replication_factor``, each partition gets 3 copies, or one per
    broker on a smaller cluster.
    """
    count = partitions or settings.partitions
    admin = AIOKafkaAdminClient(
        **client_options(settings, bootstrap), client_id=f"{settings.app_id}-admin"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in settings.all_topics if t not in existing]
        if wanted:
            replicas = replication_factor or await default_replication(admin)
            response = await admin.create_topics([NewTopic(t, count, replicas) for t in wanted])
            _raise_topic_errors(response)
        return wanted
    finally:
        await admin.close()


async def default_replication(admin: AIOKafkaAdminClient) -> int:
    brokers = (await admin.describe_cluster()).get("brokers") or []
    return max(1, min(DEFAULT_REPLICATION, len(brokers)))


def _raise_topic_errors(response: Any) -> None:
    """The admin API reports per-topic failures in its response, not as exceptions."""
    for topic, code, *rest in response.topic_errors:
        if code == 0:
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:  # another worker was first
            continue
        message = rest[0] if rest and rest[0] else error.description
        if error.retriable or issubclass(error, AUTHORIZATION_ERRORS):
            raise error(f"cannot create topic {topic}: {message}")  # retried, or reported
        raise KafkaSetupError(f"Kafka refused to create topic {topic}: {message}")
