"""What Redis holds about each partition's progress, for ``cspulse status``.

The applied offset, stream time and last apply time live in the partition's
meta hash and applied-at key (see :mod:`aggregators.keys`); Kafka's end
offsets come from the caller, which puts the two side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from aggregators import keys


@dataclass(frozen=True)
class PartitionStatus:
    topic: str
    partition: int
    applied: int | None
    end: int
    stream_time: float | None
    applied_at: float | None

    @property
    def lag(self) -> int:
        """Messages after the applied offset (all of them when nothing was applied)."""
        return max(0, self.end - (self.applied + 1 if self.applied is not None else 0))


def partition_status(redis: Redis, ends: dict[tuple[str, int], int]) -> list[PartitionStatus]:
    """Redis's side of every partition Kafka knows."""
    order = sorted(ends)
    pipe = redis.pipeline(transaction=False)
    for topic, partition in order:
        tag = keys.partition_tag(topic, partition)
        pipe.hmget(keys.meta(tag), keys.OFFSET, keys.MAX_TS)
        pipe.get(keys.applied_at(tag))
    replies = pipe.execute()
    out = []
    for i, (topic, partition) in enumerate(order):
        (offset, max_ts), at = replies[2 * i], replies[2 * i + 1]
        out.append(
            PartitionStatus(
                topic,
                partition,
                int(offset) if offset is not None else None,
                ends[(topic, partition)],
                float(max_ts) if max_ts is not None else None,
                float(at) if at is not None else None,
            )
        )
    return out


def ping(redis: Redis) -> None:
    """Raise unless Redis answers PING (one still loading its data raises BusyLoadingError)."""
    redis.ping()
