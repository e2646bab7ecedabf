"""From readout samples to Prometheus metric families: gauges and gauge histograms.

Names, help texts and types come from :mod:`aggregators.catalogue`.

Most business metrics are plain gauges. The response-time distributions are
gauge histograms (OpenMetrics ``gaugehistogram``): their buckets go up and
down as tickets leave the window, so they are not counters. The readout emits
them as ``<name>_bucket{le}``, ``<name>_gcount`` and ``<name>_gsum`` samples;
here they are regrouped into prometheus-client's
:class:`GaugeHistogramMetricFamily`, so ``histogram_quantile`` works on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeHistogramMetricFamily, Metric

from aggregators.catalogue import CATALOGUE
from aggregators.readout import Sample

HISTOGRAMS: frozenset[str] = frozenset(
    name for name, metric in CATALOGUE.items() if metric.kind == "gaugehistogram"
)


def help_of(name: str) -> str:
    """The catalogue's help text; the name itself for a metric outside it."""
    metric = CATALOGUE.get(name)
    return metric.help if metric is not None else name


Variants = Callable[[dict[str, str]], list[dict[str, str]]]
"""The label sets one sample is served under (the whole base is served twice)."""


def histogram_of(sample_name: str) -> tuple[str, str] | None:
    """(family, suffix) when the sample belongs to a gauge histogram, else None."""
    for suffix in ("_bucket", "_gcount", "_gsum"):
        family = sample_name.removesuffix(suffix)
        if family != sample_name and family in HISTOGRAMS:
            return family, suffix
    return None


def metric_families(samples: Iterable[Sample], variants: Variants) -> list[Metric]:
    """Group samples into families; histogram samples become gauge histograms."""
    gauges: dict[str, Metric] = {}
    histograms: defaultdict[str, list[tuple[str, dict[str, str], float]]] = defaultdict(list)
    for sample in samples:
        labels = dict(sample.labels)
        found = histogram_of(sample.name)
        if found is not None:
            histograms[found[0]].append((found[1], labels, sample.value))
            continue
        family = gauges.get(sample.name) or gauges.setdefault(
            sample.name, Metric(sample.name, help_of(sample.name), "gauge")
        )
        for variant in variants(labels):
            family.add_sample(sample.name, variant, sample.value)
    out = list(gauges.values())
    for name, parts in histograms.items():
        out.append(gauge_histogram(name, parts, variants))
    return out


def gauge_histogram(
    name: str, parts: list[tuple[str, dict[str, str], float]], variants: Variants
) -> GaugeHistogramMetricFamily:
    """One gauge histogram family from its bucket and sum samples (the count is +Inf's)."""
    buckets: defaultdict[tuple[tuple[str, str], ...], list[tuple[str, float]]] = defaultdict(list)
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    for suffix, labels, value in parts:
        if suffix == "_bucket":
            le = labels.pop("le")
            buckets[tuple(sorted(labels.items()))].append((le, value))
        elif suffix == "_gsum":
            sums[tuple(sorted(labels.items()))] = value
    family = GaugeHistogramMetricFamily(name, help_of(name))
    for series, series_buckets in buckets.items():
        for variant in variants(dict(series)):
            names = sorted(variant)
            one = GaugeHistogramMetricFamily(name, help_of(name), labels=names)
            one.add_metric([variant[n] for n in names], series_buckets, sums.get(series, 0.0))
            family.samples.extend(one.samples)
    return family
