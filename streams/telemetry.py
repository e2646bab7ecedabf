"""Per-process pipeline metrics (Prometheus sums them over replicas), and build info."""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# Counters and histograms would add a ``_created`` series each: a start time per
# labelled series that no board or rule reads, doubling what Prometheus stores.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)


def version() -> str:
    """The installed cspulse version ("unknown" when run from an uninstalled tree)."""
    try:
        return metadata.version("cspulse")
    except metadata.PackageNotFoundError:
        return "unknown"


BUILD_INFO = Gauge(
    "cspulse_build_info",
    "Always 1; the labels tell which cspulse and Python serve these metrics",
    ["version", "python_version"],
    registry=REGISTRY,
)
BUILD_INFO.labels(version(), platform.python_version()).set(1)

EVENTS = Counter("cs_events", "Events applied", ["topic", "type"], registry=REGISTRY)
INVALID = Counter(
    "cs_events_invalid", "Events dead-lettered as invalid", ["topic", "reason"], registry=REGISTRY
)
PLAN_WAITS = Counter(
    "cs_plan_waits",
    "Batches of a partition that waited for their billing partition (per-plan attribution)",
    ["topic"],
    registry=REGISTRY,
)
LATE = Counter("cs_events_late", "Events too late for their bucket", ["topic"], registry=REGISTRY)
DUPLICATES = Counter(
    "cs_events_duplicate", "Duplicate event ids not applied again", ["topic"], registry=REGISTRY
)
STALE = Counter(
    "cs_events_stale",
    "Billing events older than their subscription's state",
    ["topic"],
    registry=REGISTRY,
)
LAG = Gauge(
    "cs_consumer_lag_messages",
    "Messages behind the log end",
    ["topic", "partition"],
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "cs_batch_seconds",
    "Time to apply one batch to Redis",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY,
)
REDIS_RETRIES = Counter(
    "cs_redis_retries", "Batch applies retried after a Redis error", registry=REGISTRY
)


def initialize(topics_by_family: dict[str, str]) -> None:
    """Create every labelled series at 0, so dashboards show 0 rather than "no data"."""
    from schemas import REASONS
    from schemas.models import TOPIC_TYPES

    for family, topic in topics_by_family.items():
        for event_type in TOPIC_TYPES[family]:
            EVENTS.labels(topic, event_type)
        for reason in [*REASONS, "processing_error"]:
            INVALID.labels(topic, reason)
        LATE.labels(topic)
        DUPLICATES.labels(topic)
        STALE.labels(topic)
