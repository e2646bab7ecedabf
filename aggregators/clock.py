"""The time windows are judged and read at: the wall clock, or the stream's own time.

``wall`` (the default) judges lateness and reads windows at now. ``watermark``
makes a replay or backfill deterministic: lateness is judged against the
stream time of the event's own partition (the largest event time applied in
that topic-partition, as Kafka Streams does), and windows are read at the
largest event time applied anywhere. A fast topic never makes a slow one late.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, cast

ClockName = Literal["wall", "watermark"]


@dataclass(frozen=True)
class Clock:
    """How a batch's reference time and a scrape's reading time are chosen."""

    name: ClockName = "wall"

    @property
    def follows_events(self) -> bool:
        """Whether time advances with the events applied (watermark) rather than with now."""
        return self.name == "watermark"

    def batch_time(self, stream_time: float | None) -> float:
        """Time a partition's batch is judged at, given the partition's stream time."""
        if self.follows_events:
            return stream_time or 0.0
        return time.time()

    def reading_time(self, stream_times: Iterable[float | None], now: float | None = None) -> float:
        """Time windows are read at: now, or the largest stream time of any partition."""
        if self.follows_events:
            return max((t for t in stream_times if t is not None), default=0.0)
        return time.time() if now is None else now


WALL = Clock()
"""The default: windows judged and read at now."""


def clock_named(name: str) -> Clock:
    if name not in ("wall", "watermark"):
        raise ValueError(f"unknown clock {name!r}: use wall or watermark")
    return Clock(cast(ClockName, name))
