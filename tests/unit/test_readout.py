"""Metric formulas on a hand-made snapshot (no Redis)."""

from __future__ import annotations

import math

from aggregators.catalogue import CATALOGUE
from aggregators.config import MetricConfig
from aggregators.readout import Snapshot, compute

CONFIG = MetricConfig()


def values(snapshot: Snapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, s.labels): s.value for s in compute(snapshot, CONFIG)}


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"plan": "all", **labels}.items()))


def test_churn_retention_and_clv() -> None:
    # 30d: 2 new, 1 reactivated, 3 churned; 10 paying now -> S = 10 - (3 - 3) = 10
    month = {"accounts_new": 2, "accounts_reactivated": 1, "accounts_churned": 3}
    snap = Snapshot(
        sums={"30d": month},
        gauges={"paying_accounts": 10, "mrr_cents": 500000},
        live_sessions=0,
    )
    got = values(snap)
    assert got[key("cs_churn_ratio", window="30d")] == 3 / 10
    assert got[key("cs_retention_ratio", window="30d")] == (10 - 3) / 10
    assert got[key("cs_arpa", currency="USD")] == 500.0
    assert math.isclose(got[key("cs_clv", currency="USD")], 500.0 / 0.3)
    assert got[key("cs_churn_ratio", window="1h")] == 0  # 0 churned of 10 is a real 0


def test_ratios_without_data_are_absent_and_counts_are_zero() -> None:
    got = values(Snapshot(live_sessions=0))
    assert got[key("cs_tickets_opened", window="1d")] == 0
    for name in (
        "cs_fcr_ratio",
        "cs_nps",
        "cs_csat_ratio",
        "cs_ces_avg",
        "cs_renewal_ratio",
        "cs_trial_conversion_ratio",
        "cs_churn_ratio",
        "cs_product_usage_ratio",
    ):
        assert not [k for k in got if k[0] == name], name
    assert key("cs_arpa", currency="USD") not in got
    assert key("cs_clv", currency="USD") not in got


def test_nps_csat_ces() -> None:
    day = {
        "responses_nps": 10,
        "nps_promoters": 6,
        "nps_detractors": 2,
        "responses_csat": 4,
        "csat_satisfied": 3,
        "responses_ces": 2,
        "ces_sum": 11,
    }
    got = values(Snapshot(sums={"1d": day}, live_sessions=0))
    assert got[key("cs_nps", window="1d")] == 40.0
    assert got[key("cs_csat_ratio", window="1d")] == 0.75
    assert got[key("cs_ces_avg", window="1d")] == 5.5


def test_every_sample_is_in_the_catalogue_with_its_labels() -> None:
    """The catalogue (name, type, labels) describes exactly what the readout emits."""
    month = {"accounts_new": 2, "accounts_churned": 1, "tickets_opened": 3, "nps_promoters": 1}
    snap = Snapshot(
        sums={w.name: month for w in CONFIG.windows},
        gauges={"paying_accounts": 10, "mrr_cents": 500000},
        live_sessions=2,
    )
    emitted: set[str] = set()
    for sample in compute(snap, CONFIG):
        base = sample.name
        for suffix in ("_bucket", "_gcount", "_gsum"):
            if sample.name.endswith(suffix) and sample.name.removesuffix(suffix) in CATALOGUE:
                base = sample.name.removesuffix(suffix)
        metric = CATALOGUE[base]
        assert (metric.kind == "gaugehistogram") == (base != sample.name), sample.name
        extra = {"le"} if sample.name.endswith("_bucket") else set()
        assert {k for k, _ in sample.labels} == {"plan", *metric.labels, *extra}, sample
        emitted.add(base)
    assert "cs_first_response_seconds" in emitted and "cs_mrr" in emitted
