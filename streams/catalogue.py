"""From readout samples to Prometheus metric families: gauges and gauge histograms.

Most business metrics are plain gauges. The response-time distributions are
gauge histograms (OpenMetrics ``gaugehistogram``): their buckets go up and
down as tickets leave the window, so they are not counters. The readout emits
them as ``<name>_bucket{le}``, ``<name>_gcount`` and ``<name>_gsum`` samples;
here they are regrouped into prometheus-client's
:class:`GaugeHistogramMetricFamily`, so ``histogram_quantile`` works on them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import GaugeHistogramMetricFamily, Metric

from aggregators.readout import Sample

HISTOGRAMS: dict[str, str] = {
    "cs_first_response_seconds": "Time from opening to first agent reply, tickets first "
    "answered in the window",
    "cs_resolution_seconds": "Time from opening to first resolution, tickets first "
    "resolved in the window",
}
"""Gauge histogram families and their help text."""

RETENTION_HELP: dict[str, str] = {
    "cs_mrr_start": "MRR at the window's start: MRR now minus the window's movements",
    "cs_revenue_churn_ratio": "(churned + contraction MRR) / MRR at the window's start",
    "cs_nrr_ratio": "Net revenue retention: (start + expansion - contraction - churned) / start",
    "cs_grr_ratio": "Gross revenue retention: (start - contraction - churned) / start",
    "cs_quick_ratio": "SaaS quick ratio: (new + reactivation + expansion) / "
    "(contraction + churned)",
}

Variants = Callable[[dict[str, str]], list[dict[str, str]]]
"""The label sets one sample is served under (the whole base is served twice)."""


def histogram_of(sample_name: str) -> tuple[str, str] | None:
    """(family, suffix) when the sample belongs to a gauge histogram, else None."""
    for suffix in ("_bucket", "_gcount", "_gsum"):
        family = sample_name.removesuffix(suffix)
        if family != sample_name and family in HISTOGRAMS:
            return family, suffix
    return None


def metric_families(
    samples: Iterable[Sample], help_text: Mapping[str, str], variants: Variants
) -> list[Metric]:
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
            sample.name, Metric(sample.name, help_text.get(sample.name, sample.name), "gauge")
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
    family = GaugeHistogramMetricFamily(name, HISTOGRAMS[name])
    for series, series_buckets in buckets.items():
        for variant in variants(dict(series)):
            names = sorted(variant)
            one = GaugeHistogramMetricFamily(name, HISTOGRAMS[name], labels=names)
            one.add_metric([variant[n] for n in names], series_buckets, sums.get(series, 0.0))
            family.samples.extend(one.samples)
    return family
