"""Create cspulse's topics (idempotent) through the Kafka admin API."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.config import Settings


async def create_topics(
    settings: Settings, bootstrap: str, partitions: int | None = None
) -> list[str]:
    """Create the four event topics and the dead-letter topic; return those created."""
    count = partitions or settings.partitions
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{settings.app_id}-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in settings.all_topics if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                await admin.create_topics([NewTopic(t, count, 1) for t in wanted])
        return wanted
    finally:
        await admin.close()
