"""Time series of the live board: one windowed metric per step, oldest first.

A point is the metric's own formula (:func:`aggregators.readout.compute_segment`)
applied to the counter sums of one step (one or more consecutive buckets
added up), for the whole base or one plan; ``cs_mrr`` is MRR now with the
movements of later steps undone. The bucket hashes are read in one pipeline
here, so the board never talks to Redis itself, and a page reads them once
for all its charts.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aggregators import catalogue as m
from aggregators import keys, plans
from aggregators.config import MetricConfig
from aggregators.families import billing
from aggregators.plans import ALL
from aggregators.reader import Reader
from aggregators.readout import Sample, Snapshot, compute_segment, mrr_start_cents, split_by_plan
from aggregators.windows import Window, WindowSet, bucket_of

HOURS = 24
"""How far back a series reaches by default."""
BUCKET = "bucket"
"""The name of the one-step window a point is computed over."""
NOT_PER_BUCKET = frozenset({m.ACTIVE_USERS.name, m.ACTIVE_ACCOUNTS.name})
"""Distinct counts: the last-seen sets keep each member's latest time only, so how many
were active in a past step is not known (and 0 would lie): their points are None."""

Labels = dict[str, str]
Point = tuple[int, float | None]


def hourly_granularity(config: MetricConfig) -> int:
    """The bucket size of chart points: hourly when configured, else the coarsest kept 24 h."""
    kept = [g for g in config.granularities if config.windows.retention(g) >= HOURS * 3600]
    hourly = [g for g in kept if g <= 3600]
    return max(hourly or kept or config.granularities)


def max_hours(config: MetricConfig) -> int:
    """How far back a series can reach: the retention of its buckets, in whole hours."""
    g = hourly_granularity(config)
    return max(1, (config.windows.retention(g) - g) // 3600)


def plan_labels(reader: Reader) -> list[str]:
    """Every plan label a series can be asked for: the whole base, admitted plans,
    ``other`` and ``none``."""
    admitted = sorted(keys.text(m) for m in reader.redis.smembers(keys.PLAN_NAMES))
    return [ALL, *admitted, plans.OTHER, plans.NONE]


def read_buckets(reader: Reader, granularity: int, t: float, count: int) -> list[Snapshot]:
    """Every plan's counter sums of the ``count`` most recent buckets, oldest first."""
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


@dataclass(frozen=True)
class Buckets:
    """The buckets a page's charts share: read once, then cut into steps per chart."""

    granularity: int
    first: int
    """Index of the oldest bucket."""
    snapshots: list[Snapshot]
    mrr_now_cents: dict[str, float]
    """Plan -> MRR now (cents), where the MRR series starts from."""

    def steps(self, per_step: int) -> tuple[list[int], list[Snapshot]]:
        """(start times, summed snapshots) of consecutive groups of ``per_step`` buckets;
        the last group ends with the newest bucket."""
        n = len(self.snapshots)
        offset = n % per_step
        starts, out = [], []
        for i in range(offset, n, per_step):
            starts.append((self.first + i) * self.granularity)
            out.append(_summed(self.snapshots[i : i + per_step]))
        return starts, out


def _summed(snapshots: list[Snapshot]) -> Snapshot:
    total: defaultdict[str, float] = defaultdict(float)
    for snapshot in snapshots:
        for name, value in snapshot.sums.get(BUCKET, {}).items():
            total[name] += value
    return Snapshot(sums={BUCKET: dict(total)})


def load_buckets(reader: Reader, config: MetricConfig, hours: int) -> Buckets:
    """The buckets of the last ``hours`` and MRR now per plan, for :func:`points`."""
    g = hourly_granularity(config)
    count = max(1, hours * 3600 // g)
    result = reader.read()
    snapshots = read_buckets(reader, g, result.t, count)
    mrr = {
        plan: segment.gauges.get(billing.MRR_CENTS, 0.0)
        for plan, segment in split_by_plan(result.snapshot).items()
    }
    return Buckets(g, bucket_of(result.t, g) - count + 1, snapshots, mrr)


@dataclass(frozen=True)
class Steps:
    """Every sample of one segment per step, computed once for all of a page's charts."""

    starts: list[int]
    samples: list[list[Sample]]
    mrr: list[float | None]
    """MRR (major units) at the end of each step."""

    def pick(self, metric: str, labels: Mapping[str, str]) -> list[Point]:
        """One metric's value per step; ``None`` where its formula has no value."""
        if metric == "cs_mrr":
            return list(zip(self.starts, self.mrr, strict=True))
        if metric in NOT_PER_BUCKET:
            return [(start, None) for start in self.starts]
        wanted = {**labels, "window": BUCKET}
        values = [_pick(samples, metric, wanted) for samples in self.samples]
        return list(zip(self.starts, values, strict=True))


def steps(buckets: Buckets, config: MetricConfig, plan: str = ALL, per_step: int = 1) -> Steps:
    """The samples of the whole base or one plan, over steps of ``per_step`` buckets."""
    starts, summed = buckets.steps(per_step)
    segments = [split_by_plan(s).get(plan, Snapshot()) for s in summed]
    width = buckets.granularity * per_step
    one = dataclasses.replace(config, windows=WindowSet((Window(BUCKET, width, width),)))
    samples = [compute_segment(seg, one) for seg in segments]
    mrr = _mrr_history(buckets.mrr_now_cents.get(plan, 0.0), segments)
    return Steps(starts, samples, mrr)


def bucket_series(
    reader: Reader,
    config: MetricConfig,
    metric: str,
    labels: Labels,
    hours: int = HOURS,
    plan: str = ALL,
) -> dict[str, Any]:
    """Per-bucket values of one windowed metric (or ``cs_mrr``), oldest first."""
    buckets = load_buckets(reader, config, hours)
    return {
        "metric": metric,
        "labels": labels,
        "plan": plan,
        "granularity": buckets.granularity,
        "points": [list(p) for p in steps(buckets, config, plan).pick(metric, labels)],
    }


def _mrr_history(now: float, segments: list[Snapshot]) -> list[float | None]:
    """MRR at the end of each step: MRR now with the movements of later steps undone."""
    out: list[float | None] = []
    for snapshot in reversed(segments):
        out.append(now / 100.0)
        now = mrr_start_cents(snapshot.sums.get(BUCKET, {}), now)
    return out[::-1]


def _pick(samples: list[Sample], metric: str, labels: Mapping[str, str]) -> float | None:
    """The sample of ``metric`` with exactly these labels; ``plan`` and ``currency``
    (one of each in a segment) need not be given."""
    implied = {"plan", "currency"} - set(labels)
    for s in samples:
        if s.name == metric and {k: v for k, v in s.labels if k not in implied} == labels:
            return s.value
    return None
