"""What one board page reads: one Redis snapshot, the buckets its charts share, health.

The numbers come from the same reads and formulas as ``/metrics``, for the
plan and window the page shows; percentiles are ``histogram_quantile`` of
the gauge histograms, as a Grafana panel would compute them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.registry import CollectorRegistry
from redis.exceptions import RedisError

from aggregators.config import MetricConfig
from aggregators.health import HealthConfig
from aggregators.health_index import at_risk, band_counts
from aggregators.reader import Reader
from aggregators.readout import Snapshot, compute_segment, split_by_plan
from aggregators.series import Buckets, load_buckets, plan_labels
from streams.board.params import View

WINDOW_OF = {"24h": "1d", "7d": "7d", "30d": "30d"}
"""The board's window -> the metric window its numbers use."""
STEP_HOURS = {"24h": 1, "7d": 6, "30d": 24}
"""The board's window -> hours per chart point."""
RISK_ROWS = 10

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class BoardData:
    view: View
    samples: Samples
    t: float
    redis_ok: bool = True
    plans: list[str] = field(default_factory=lambda: ["all"])
    latest: dict[str, float] = field(default_factory=dict)
    bands: dict[str, int] = field(default_factory=dict)
    health_avg: float | None = None
    risky: list[dict[str, Any]] = field(default_factory=list)
    """The lowest scores, at most :data:`RISK_ROWS`, each with its band."""
    buckets: Buckets | None = None

    @property
    def window(self) -> str:
        return WINDOW_OF[self.view.window]

    @property
    def step_hours(self) -> int:
        return STEP_HOURS[self.view.window]


def segment_samples(snapshot: Snapshot, plan: str, config: MetricConfig) -> Samples:
    """The samples of one plan segment, keyed by name and labels (currency left out)."""
    segment = split_by_plan(snapshot).get(plan, Snapshot())
    return {
        (s.name, tuple(kv for kv in s.labels if kv[0] != "currency")): s.value
        for s in compute_segment(segment, config)
    }


def gather(reader: Reader, config: MetricConfig, health: HealthConfig, view: View) -> BoardData:
    """One read of Redis for the page; a page that says "Redis down" if it fails."""
    try:
        result = reader.read()
        data = BoardData(view, segment_samples(result.snapshot, view.plan, config), result.t)
        data.plans = plan_labels(reader)
        data.latest = result.latest
        data.bands, data.health_avg = band_counts(reader.redis, health)
        data.risky = at_risk(reader.redis, health, RISK_ROWS, result.t)
        data.buckets = load_buckets(reader, config, view.hours)
        return data
    except (RedisError, OSError):
        return BoardData(view, {}, time.time(), redis_ok=False)


def value_of(data: BoardData, metric: str, labels: Mapping[str, str]) -> float | None:
    """A sample of the page's segment; ``p50:``/``p90:`` prefixes read a histogram."""
    if metric.startswith(("p50:", "p90:")):
        return quantile(data.samples, float(metric[1:3]) / 100, metric[4:], data.window)
    return data.samples.get((metric, tuple(sorted(labels.items()))))


def quantile(samples: Samples, q: float, histogram: str, window: str) -> float | None:
    """``histogram_quantile`` of a window's gauge histogram: linear inside the bucket."""
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == f"{histogram}_bucket" and dict(labels).get("window") == window
    )
    return quantile_of(buckets, q)


def quantile_of(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of cumulative (upper bound, count) pairs, as Prometheus computes it."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return None


PIPELINE_COUNTERS = {
    "cs_events_total": "Events applied",
    "cs_events_invalid_total": "Dead-lettered",
    "cs_events_late_total": "Too late",
    "cs_events_duplicate_total": "Duplicates",
}


def pipeline_counts(registry: CollectorRegistry) -> dict[str, float]:
    """This process's pipeline counters, summed over labels."""
    out = dict.fromkeys(PIPELINE_COUNTERS.values(), 0.0)
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in PIPELINE_COUNTERS:
                out[PIPELINE_COUNTERS[sample.name]] += sample.value
    return out


def dead_letters(registry: CollectorRegistry) -> dict[str, float]:
    """Invalid events this process dead-lettered, by reason, most first."""
    out: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "cs_events_invalid_total":
                reason = sample.labels.get("reason", "")
                out[reason] = out.get(reason, 0.0) + sample.value
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
