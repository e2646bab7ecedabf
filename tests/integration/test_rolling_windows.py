"""Rolling window sums against a real Redis: equal to the plain sum of the window's buckets.

Counters are applied through the real apply script at one time and read by
the real reader at later (and earlier) times, so cursors move forward, move
back, jump past a whole window, and meet buckets dated after the reading
time. The expectation is computed here from the applied amounts and the
contract's bucket ranges, with no Redis involved.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from redis.asyncio import Redis

from aggregators import keys
from aggregators.batch import BatchResult, Outcome
from aggregators.config import MetricConfig
from aggregators.effects import Effects
from aggregators.reader import Reader
from aggregators.store import PartitionStore
from aggregators.windows import bucket_of
from tests.harness import Stack

T0 = 1_700_000_000.0
"""Writer time; aligned to no granularity on purpose."""

TOPIC = "rolling.tickets"

Applied = list[tuple[int, int, str, float]]
"""(granularity, bucket, field, amount) as written."""


def _effects(times: list[float], amount: float, config: MetricConfig) -> tuple[Effects, Applied]:
    effects = Effects()
    applied: Applied = []
    for i, ts in enumerate(times):
        for field in ("tickets_opened", "tickets_opened@team"):
            for g in config.granularities:
                effects.counters[(g, bucket_of(ts, g))][field] += amount + i * 0.25
    for (g, k), fields in effects.counters.items():
        applied += [(g, k, f, v) for f, v in fields.items()]
    return effects, applied


async def _apply(url: str, config: MetricConfig, batches: list[tuple[Effects, float]]) -> None:
    redis = Redis.from_url(url)
    store = PartitionStore(redis, config, TOPIC, 0, "tickets")
    for offset, (effects, t) in enumerate(batches):
        assert await store.apply(BatchResult(effects, Outcome(), {}), offset - 1, offset, t)
    await redis.aclose()


def _expected(applied: Applied, config: MetricConfig, t: float) -> dict[str, dict[str, float]]:
    sums: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    for window in config.windows:
        low, high = window.bucket_range(t)
        for g, k, field, amount in applied:
            if g == window.granularity and low <= k <= high:
                sums[window.name][field] += amount
    return {w: dict(f) for w, f in sums.items()}


def _read(stack: Stack, config: MetricConfig, t: float) -> dict[str, dict[str, float]]:
    snapshot = Reader(stack.redis(), config).read(now=t).snapshot
    sums = {w: {f: v for f, v in fields.items() if v} for w, fields in snapshot.sums.items()}
    return {w: fields for w, fields in sums.items() if fields}


@pytest.mark.parametrize(
    "reads",
    [
        # scrapes every few minutes for two days: cursors move a few buckets at a time
        [T0 + 180 * i for i in range(0, 960, 37)],
        # one read long after everything: windows rebuilt from what is left
        [T0 + 10 * 86400],
        # a reader whose clock is behind the writer's, then ahead, then behind again
        [T0 - 7200, T0 + 3 * 86400, T0 + 3600],
    ],
    ids=["frequent", "after-a-gap", "clock-back-and-forth"],
)
def test_rolling_sums_equal_the_sum_of_the_window_buckets(
    stack: Stack, names: tuple[str, str], reads: list[float]
) -> None:
    config = MetricConfig()
    stack.redis().hset(keys.REGISTRY, keys.partition_tag(TOPIC, 0), "tickets")
    past = [T0 - 40 * 86400 + 3571 * i for i in range(1000)]  # 41 days, every window's range
    late, applied_late = _effects([T0 - 5 * 86400 + 17, T0 - 1800], 10.0, config)
    first, applied_first = _effects(past, 1.0, config)
    future, applied_future = _effects([T0 + 200, T0 + 7200 + 5], 100.0, config)
    batches = [(first, T0), (late, T0 + 86400), (future, T0)]
    asyncio.run(_apply(stack.redis_url, config, batches))
    applied = applied_first + applied_future + applied_late
    for t in reads:
        expected = _expected(applied, config, t)
        got = _read(stack, config, t)
        assert got.keys() == expected.keys(), t
        for window, fields in expected.items():
            assert got[window] == pytest.approx(fields, rel=1e-12), (window, t)
