"""Connection options shared by every Kafka client cspulse creates.

The worker's consumer and dead-letter producer, ``topics create`` and the
generator all build their aiokafka clients from :func:`client_options`, so a
connection setting is added in one place and reaches all of them.
"""

from __future__ import annotations

from typing import Any

from streams.config import Settings


def client_options(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaConsumer``, ``AIOKafkaProducer`` and the admin client."""
    return {"bootstrap_servers": bootstrap.split(",")}
