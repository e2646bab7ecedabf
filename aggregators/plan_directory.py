"""Bounded plan labels, shared by all partitions.

Past ``max_plans`` labels, new plan names are reported as ``other`` (metrics.md,
Segments); the set of admitted labels lives in ``cs:plan_names``.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from aggregators import keys
from aggregators.plans import label_of
from aggregators.scripts import script

PLAN_LABEL_LUA = script("plan_label")
"""The bounded label of each raw plan name (``aggregators/lua/plan_label.lua``)."""

_LABEL_CACHE = 10_000
"""Raw plan names a worker remembers the label of; past it the memo starts over."""


class PlanDirectory:
    """The bounded set of plan labels, shared by all partitions.

    Not part of the atomic apply (it spans partitions): labels only ever get
    admitted, so repeating a write is harmless.
    """

    def __init__(self, redis: Redis, max_plans: int) -> None:
        self.redis = redis
        self.max_plans = max_plans
        self._labels: dict[str, str] = {}
        self._label_script = redis.register_script(PLAN_LABEL_LUA)

    async def labels(self, raw_plans: Iterable[str]) -> dict[str, str]:
        """Bounded label of each raw plan name (admitted once, remembered).

        Names that would read as a reserved segment (``all``, ``other``,
        ``none``, or containing the segment separator) are escaped first.
        """
        wanted = set(raw_plans)
        if len(self._labels) > _LABEL_CACHE:
            self._labels.clear()  # many raw names (most reported as ``other``): start over
        missing = sorted(p for p in wanted if p not in self._labels)
        if missing:
            escaped = [label_of(p) for p in missing]
            got = await self._label_script(keys=[keys.PLAN_NAMES], args=[self.max_plans, *escaped])
            self._labels.update({raw: keys.text(v) for raw, v in zip(missing, got, strict=True)})
        return {raw: self._labels[raw] for raw in wanted}
