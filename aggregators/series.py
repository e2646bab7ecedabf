"""Time series of the live board: one windowed metric per bucket, oldest first.

A point is the metric's own formula (:func:`aggregators.readout.compute_segment`)
applied to the counter sums of a single bucket, whole base; ``cs_mrr`` is MRR
now with the movements of later buckets undone. The bucket hashes are read in
one pipeline here, so the board never talks to Redis itself. Active users and
accounts have no points: the last-seen sets keep each member's latest time
only, so how many were active in a past bucket is not known (and 0 would lie).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from aggregators import catalogue as m
from aggregators import keys
from aggregators.config import MetricConfig
from aggregators.families import billing
from aggregators.plans import ALL
from aggregators.reader import Reader
from aggregators.readout import Sample, Snapshot, compute_segment, mrr_start_cents, split_by_plan
from aggregators.windows import Window, WindowSet, bucket_of

HOURS = 24
"""How far back a series reaches by default."""
BUCKET = "bucket"
"""The name of the one-bucket window a point is computed over."""
NOT_PER_BUCKET = frozenset({m.ACTIVE_USERS.name, m.ACTIVE_ACCOUNTS.name})
"""Distinct counts, whose points are None (see the module docstring)."""

Labels = dict[str, str]


def hourly_granularity(config: MetricConfig) -> int:
    """The bucket size of sparklines: hourly when configured, else the coarsest kept for 24 h."""
    kept = [g for g in config.granularities if config.windows.retention(g) >= HOURS * 3600]
    hourly = [g for g in kept if g <= 3600]
    return max(hourly or kept or config.granularities)


def read_buckets(reader: Reader, granularity: int, t: float, count: int) -> list[Snapshot]:
    """The whole base's counter sums of the ``count`` most recent buckets, oldest first."""
    newest = bucket_of(t, granularity)
    indexes = range(newest - count + 1, newest + 1)
    tags = list(reader.partitions())
    pipe = reader.redis.pipeline(transaction=False)
    for tag in tags:
        for k in indexes:
            pipe.hgetall(keys.bucket(tag, granularity, k))
    replies = iter(pipe.execute()) if tags else iter(())
    sums: list[defaultdict[str, float]] = [defaultdict(float) for _ in indexes]
    for _tag in tags:
        for i in range(len(indexes)):
            for name, value in next(replies).items():
                sums[i][keys.text(name)] += float(value)
    return [Snapshot(sums={BUCKET: dict(s)}) for s in sums]


def bucket_series(
    reader: Reader, config: MetricConfig, metric: str, labels: Labels, hours: int = HOURS
) -> dict[str, Any]:
    """Per-bucket values of one windowed metric (or ``cs_mrr``), whole base, oldest first.

    A point is the metric's own formula over that single bucket; ``None``
    where the formula has no value (a ratio without data, a distinct count).
    """
    g = hourly_granularity(config)
    count = max(1, hours * 3600 // g)
    t = reader.reading_time()
    first = bucket_of(t, g) - count + 1
    values: list[float | None] = [None] * count
    if metric not in NOT_PER_BUCKET:
        buckets = read_buckets(reader, g, t, count)
        values = _points(reader, config, buckets, metric, labels, g)
    return {
        "metric": metric,
        "labels": labels,
        "granularity": g,
        "points": [[(first + i) * g, v] for i, v in enumerate(values)],
    }


def _points(
    reader: Reader,
    config: MetricConfig,
    buckets: list[Snapshot],
    metric: str,
    labels: Labels,
    g: int,
) -> list[float | None]:
    if metric == "cs_mrr":
        return _mrr_history(reader, buckets)
    one = dataclasses.replace(config, windows=WindowSet((Window(BUCKET, g, g),)))
    return [
        _pick(compute_segment(split_by_plan(b)[ALL], one), metric, {**labels, "window": BUCKET})
        for b in buckets
    ]


def _mrr_history(reader: Reader, buckets: list[Snapshot]) -> list[float | None]:
    """MRR at the end of each bucket: MRR now with the movements of later buckets undone."""
    now = split_by_plan(reader.read().snapshot)[ALL].gauges.get(billing.MRR_CENTS, 0.0)
    out: list[float | None] = []
    for snapshot in reversed(buckets):
        out.append(now / 100.0)
        now = mrr_start_cents(split_by_plan(snapshot)[ALL].sums.get(BUCKET, {}), now)
    return out[::-1]


def _pick(samples: list[Sample], metric: str, labels: Mapping[str, str]) -> float | None:
    """The sample of ``metric`` with exactly these labels; ``plan`` and ``currency``
    (one of each in a segment) need not be given."""
    implied = {"plan", "currency"} - set(labels)
    for s in samples:
        if s.name == metric and {k: v for k, v in s.labels if k not in implied} == labels:
            return s.value
    return None
