"""Per-plan attribution by event time: hold a partition until its billing partition caught up.

An event of time T counts in its account's plan at T (metrics.md, Segments). Before it
is attributed, the co-partitioned billing partition must be applied past T plus the
plan lateness, or read to its end, as Kafka Streams synchronises co-partitioned inputs
(``max.task.idle.ms``). Progress is read from Redis and the log end from the broker,
never this process's memory, so the billing partition may belong to any worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aggregators.batch import Offered
from aggregators.config import MetricConfig
from aggregators.store import PlanProgress

log = logging.getLogger("cspulse.processor")

PlanEnds = Callable[[str, int], Awaitable[int | None]]
"""(billing topic, partition) -> its log end offset from the broker (None: unknown)."""


@dataclass(frozen=True, slots=True)
class Hold:
    """The batch is applied up to ``resume_at`` - 1; the rest waits for its billing
    partition: re-read from ``resume_at`` shortly."""

    resume_at: int


class PlanWait:
    """Decides how much of a partition's batch can be attributed now."""

    def __init__(self, config: MetricConfig, ends: PlanEnds | None, wait_max: float) -> None:
        self.config = config
        self.ends = ends
        """Where the billing partitions end; None (no broker at hand) never waits."""
        self.wait_max = wait_max
        self._since: dict[tuple[str, int], float] = {}

    async def hold(
        self,
        topic: str,
        partition: int,
        fresh: Sequence[Offered],
        progress: PlanProgress | None,
    ) -> int | None:
        """The offset of the first event whose plan cannot be decided yet, or None.

        ``progress``: the billing partition's applied offset and stream time (None for
        billing itself). A hold longer than ``wait_max`` (no worker reads billing) gives
        up with a warning.
        """
        if progress is None or self.ends is None or not fresh:
            return None
        stream_time, lateness = progress.stream_time, self.config.plan_lateness
        horizon = None if stream_time is None else stream_time - lateness
        first = next((o for o in fresh if horizon is None or o.event.time > horizon), None)
        if first is None:
            self._since.pop((topic, partition), None)
            return None
        end = await self.ends(self.config.plan_topic, partition)
        if end is None or progress.offset + 1 >= end or self._too_long(topic, partition):
            self._since.pop((topic, partition), None)
            return None
        return first.offset

    def _too_long(self, topic: str, partition: int) -> bool:
        since = self._since.setdefault((topic, partition), time.monotonic())
        if time.monotonic() - since <= self.wait_max:
            return False
        log.warning(
            "%s[%d] waited %.0f s for %s[%d] to be read (per-plan attribution); going on "
            "with the plans known so far: is a worker consuming the billing topic?",
            topic,
            partition,
            self.wait_max,
            self.config.plan_topic,
            partition,
        )
        return True
