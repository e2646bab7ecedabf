"""The collectors behind ``/metrics``: business gauges read from Redis at scrape time,
and the union and name filter the exporter serves them through.

The business gauges come from Redis on every scrape (a custom collector, as
in prometheus_client's docs), so every replica serves the same numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from aggregators import catalogue as m
from aggregators.config import MetricConfig
from aggregators.health import HealthConfig
from aggregators.health_index import band_counts
from aggregators.reader import Reader
from aggregators.readout import compute
from streams.exposition import help_of, metric_families

log = logging.getLogger("cspulse.exporter")


class RedisCollector(Collector):
    """Reads the business gauges from Redis on every scrape."""

    def __init__(self, reader: Reader, config: MetricConfig, health: HealthConfig) -> None:
        self.reader = reader
        self.config = config
        self.health = health
        self.last_ok = False

    def _health(self) -> Iterator[Metric]:
        """Health bands and mean from the score index (whole base only)."""
        try:
            counts, mean = band_counts(self.reader.redis, self.health)
        except (RedisError, OSError):
            return
        bands = _gauge(m.ACCOUNTS_BY_HEALTH.name)
        for band, n in counts.items():
            for labels in _whole_base({"band": band}):
                bands.add_sample(m.ACCOUNTS_BY_HEALTH.name, labels, n)
        yield bands
        if mean is not None:
            avg = _gauge(m.HEALTH_SCORE_AVG.name)
            for labels in _whole_base({}):
                avg.add_sample(m.HEALTH_SCORE_AVG.name, labels, mean)
            yield avg

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families: dict[str, Metric] = {}
        latest: dict[str, float] = {}
        try:
            result = self.reader.read()
            self.last_ok = True
            latest = result.latest
            samples = compute(result.snapshot, self.config)
            for family in metric_families(samples, _serving_labels):
                families[family.name] = family
        except (RedisError, OSError) as exc:
            self.last_ok = False
            log.warning("scrape could not read Redis: %s", exc)
        yield from families.values()
        yield from self._health()
        yield _latest_family(latest)
        yield GaugeMetricFamily(
            "cs_redis_up", "1 when the scrape's Redis read succeeded", value=int(self.last_ok)
        )
        yield GaugeMetricFamily(
            "cs_collect_duration_seconds",
            "Time the scrape spent reading Redis",
            value=time.perf_counter() - started,
        )


def _gauge(name: str) -> Metric:
    return Metric(name, help_of(name), "gauge")


def _serving_labels(labels: dict[str, str]) -> list[dict[str, str]]:
    return _whole_base(labels) if labels.get("plan") == "all" else [labels]


def _whole_base(labels: dict[str, str]) -> list[dict[str, str]]:
    """The whole base is served twice: with the contract's labels exactly (no ``plan``),
    and with ``plan="all"`` beside the per-plan segments, for dashboards."""
    contract = {k: v for k, v in labels.items() if k != "plan"}
    return [contract, {**contract, "plan": "all"}]


def _latest_family(latest: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "cs_latest_event_timestamp_seconds",
        "Largest event time applied (Unix seconds)",
        labels=["topic"],
    )
    for topic, ts in sorted(latest.items()):
        family.add_metric([topic], ts)
    return family


class Combined(Collector):
    """The Redis-backed gauges and this process's own metrics, as one registry."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


class NamedOnly(Collector):
    """The samples named in ``?name[]=...``, as prometheus_client's own handler serves them."""

    def __init__(self, source: Collector, names: set[str]) -> None:
        self.source, self.names = source, names

    def collect(self) -> Iterator[Metric]:
        for metric in self.source.collect():
            samples = [s for s in metric.samples if s.name in self.names]
            if samples:
                only = Metric(metric.name, metric.documentation, metric.type, metric.unit)
                only.samples = samples
                yield only
