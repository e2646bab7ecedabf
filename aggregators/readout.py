"""From summed Redis state to metric values: every formula of the contract.

Pure. :mod:`aggregators.reader` gathers the sums (all partitions added up)
and this module turns them into samples. Ratios and averages without data
are left out, never NaN or a made-up 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aggregators import catalogue as m
from aggregators import histograms as hg
from aggregators.catalogue import MetricDef
from aggregators.config import MetricConfig
from aggregators.families import FAMILIES, declared_fields
from aggregators.families import billing as b
from aggregators.families import sessions as s
from aggregators.families import surveys as sv
from aggregators.families import tickets as tk
from aggregators.histograms import LE_BOUNDS, histogram_fields, le_label
from aggregators.plans import ALL, split
from aggregators.sentiment import SENTIMENTS

SURVEY_KINDS = ("nps", "csat", "ces")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass
class Snapshot:
    """Everything read from Redis, summed over partitions."""

    sums: dict[str, dict[str, float]] = field(default_factory=dict)
    """Window name -> counter field -> sum over the window's buckets."""
    gauges: dict[str, float] = field(default_factory=dict)
    distinct: dict[tuple[str, str], int] = field(default_factory=dict)
    """(distinct-count name, window name) -> exact distinct count."""
    live_sessions: int | None = None
    """Live sessions now (whole base only: not segmented by plan)."""


class UnknownField(KeyError):
    """The readout read a name no family declares: a misspelt or renamed field, which
    would otherwise read 0."""


class Fields(dict[str, float]):
    """Summed fields whose every read is checked against the families' declared names
    (:data:`aggregators.families.base.Family.fields`): an unknown one raises
    :class:`UnknownField`, a known one without data reads 0."""

    def __init__(self, values: Mapping[str, float], known: frozenset[str]) -> None:
        super().__init__(values)
        self.known = known

    def __missing__(self, name: str) -> float:
        if name not in self.known:
            raise UnknownField(f"no family declares the field {name!r}")
        return 0.0

    def __getitem__(self, name: str) -> float:
        if name not in self.known:
            raise UnknownField(f"no family declares the field {name!r}")
        return dict.get(self, name, 0.0)

    def get(self, name: str, default: float = 0.0) -> float:  # type: ignore[override]
        """Checked like ``[name]``; ``default`` for a known field without data."""
        if name not in self.known:
            raise UnknownField(f"no family declares the field {name!r}")
        return dict.get(self, name, default)


class _Distinct:
    """Distinct counts by (name, window), checked like :class:`Fields`."""

    def __init__(self, counts: Mapping[tuple[str, str], int], known: frozenset[str]) -> None:
        self.counts, self.known = counts, known

    def get(self, key: tuple[str, str], default: int = 0) -> int:
        if key[0] not in self.known:
            raise UnknownField(f"no family declares the distinct count {key[0]!r}")
        return self.counts.get(key, default)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


class _Out:
    """Collects samples, dropping absent (None) values."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def add(self, metric: MetricDef, value: float | None, **labels: str) -> None:
        self.add_sample(metric.name, value, **labels)

    def add_sample(self, name: str, value: float | None, **labels: str) -> None:
        """A sample under its own name: one of a gauge histogram's ``_bucket``, ``_gsum``..."""
        if value is not None:
            self.samples.append(Sample(name, tuple(sorted(labels.items())), float(value)))


def compute(snapshot: Snapshot, config: MetricConfig) -> list[Sample]:
    """All business samples for one scrape: the whole base (plan="all") and each plan."""
    samples: list[Sample] = []
    for plan, segment in sorted(split_by_plan(snapshot).items(), key=lambda kv: kv[0] != ALL):
        samples += [
            Sample(s.name, tuple(sorted((*s.labels, ("plan", plan)))), s.value)
            for s in compute_segment(segment, config)
        ]
    return samples


def compute_segment(snapshot: Snapshot, config: MetricConfig) -> list[Sample]:
    """The samples of one segment (labels without ``plan``). Every field it reads is
    checked against the families' declared names (:class:`Fields`)."""
    known = declared_fields()
    snapshot = Snapshot(
        sums={name: Fields(sums, known) for name, sums in snapshot.sums.items()},
        gauges=Fields(snapshot.gauges, known),
        distinct=_Distinct(snapshot.distinct, known),  # type: ignore[arg-type]
        live_sessions=snapshot.live_sessions,
    )
    out = _Out()
    for window in config.windows:
        w = snapshot.sums.get(window.name) or Fields({}, known)
        _window_counts(out, window.name, w)
        _support(out, window.name, w)
        _response_histograms(out, window.name, w)
        _surveys(out, window.name, w)
        _usage(out, window.name, w, snapshot)
        _revenue(out, window.name, w, snapshot.gauges, config)
        _revenue_retention(out, window.name, w, snapshot.gauges, config)
    _gauges(out, snapshot, config)
    return out.samples


def split_by_plan(snapshot: Snapshot) -> dict[str, Snapshot]:
    """One snapshot per plan segment; fields named ``x@plan`` become ``x`` in ``plan``.

    Values add up: should two stored fields ever map to one segment and name,
    neither replaces the other (plan labels are escaped so that no plan is
    named ``all``; see :func:`aggregators.plans.label_of`).
    """
    segments: dict[str, Snapshot] = {ALL: Snapshot(live_sessions=snapshot.live_sessions)}

    def segment(plan: str) -> Snapshot:
        return segments.setdefault(plan, Snapshot())

    for window, fields in snapshot.sums.items():
        for name, value in fields.items():
            base, plan = split(name)
            sums = segment(plan).sums.setdefault(window, {})
            sums[base] = sums.get(base, 0.0) + value
    for name, value in snapshot.gauges.items():
        base, plan = split(name)
        gauges = segment(plan).gauges
        gauges[base] = gauges.get(base, 0.0) + value
    for (name, window), count in snapshot.distinct.items():
        base, plan = split(name)
        distinct = segment(plan).distinct
        distinct[(base, window)] = distinct.get((base, window), 0) + count
    return segments


def _window_counts(out: _Out, window: str, w: Mapping[str, float]) -> None:
    """The plain windowed counts the families declare (``Family.window_counts``)."""
    for family in FAMILIES.values():
        for name, metric in family.window_counts.items():
            out.add(m.CATALOGUE[metric], w.get(name, 0.0), window=window)


def _support(out: _Out, window: str, w: Mapping[str, float]) -> None:
    resolved = w.get(tk.RESOLVED, 0.0)
    out.add(m.FCR_RATIO, _ratio(w.get(tk.FCR, 0.0), resolved), window=window)
    out.add(
        m.FIRST_RESPONSE_SECONDS_AVG,
        _ratio(w.get(tk.FIRST_RESPONSE_SUM, 0.0), w.get(tk.FIRST_RESPONSE_N, 0.0)),
        window=window,
    )
    out.add(
        m.RESOLUTION_SECONDS_AVG,
        _ratio(w.get(tk.RESOLUTION_SUM, 0.0), w.get(tk.RESOLUTION_N, 0.0)),
        window=window,
    )


def _response_histograms(out: _Out, window: str, w: Mapping[str, float]) -> None:
    """Gauge histograms of first-response and resolution times (cumulative ``le`` buckets).

    Each ticket sits in exactly one stored bucket field (the smallest bound it
    fits), so a late reply or reopen moves it with one retraction; the
    cumulative counts Prometheus expects are summed here.
    """
    for metric, histogram, total, count in (
        (
            m.FIRST_RESPONSE_SECONDS,
            hg.FIRST_RESPONSE,
            tk.FIRST_RESPONSE_SUM,
            tk.FIRST_RESPONSE_N,
        ),
        (m.RESOLUTION_SECONDS, hg.RESOLUTION, tk.RESOLUTION_SUM, tk.RESOLUTION_N),
    ):
        name = metric.name
        cumulative = 0.0
        for bound, field_name in zip(LE_BOUNDS, histogram_fields(histogram), strict=True):
            cumulative += w.get(field_name, 0.0)
            out.add_sample(f"{name}_bucket", cumulative, le=le_label(bound), window=window)
        out.add_sample(f"{name}_gcount", w.get(count, 0.0), window=window)
        out.add_sample(f"{name}_gsum", w.get(total, 0.0), window=window)


def _surveys(out: _Out, window: str, w: Mapping[str, float]) -> None:
    for kind in SURVEY_KINDS:
        out.add(m.SURVEY_RESPONSES, w.get(sv.responses(kind), 0.0), kind=kind, window=window)
    nps_n = w.get(sv.responses("nps"), 0.0)
    promoters, detractors = w.get(sv.NPS_PROMOTERS, 0.0), w.get(sv.NPS_DETRACTORS, 0.0)
    nps = _ratio(100.0 * (promoters - detractors), nps_n)
    out.add(m.NPS, nps, window=window)
    out.add(
        m.CSAT_RATIO,
        _ratio(w.get(sv.CSAT_SATISFIED, 0.0), w.get(sv.responses("csat"), 0.0)),
        window=window,
    )
    out.add(
        m.CES_AVG, _ratio(w.get(sv.CES_SUM, 0.0), w.get(sv.responses("ces"), 0.0)), window=window
    )
    for sentiment in SENTIMENTS:
        out.add(
            m.FEEDBACK_COMMENTS,
            w.get(sv.comments(sentiment), 0.0),
            sentiment=sentiment,
            window=window,
        )


def _usage(out: _Out, window: str, w: Mapping[str, float], snapshot: Snapshot) -> None:
    users = snapshot.distinct.get((s.USERS, window), 0)
    accounts = snapshot.distinct.get((s.ACCOUNTS, window), 0)
    time_in_app = w.get(s.TIME_IN_APP, 0.0)
    paying = snapshot.gauges.get(b.PAYING, 0.0)
    out.add(m.ACTIVE_USERS, users, window=window)
    out.add(m.ACTIVE_ACCOUNTS, accounts, window=window)
    out.add(m.SESSIONS, w.get(s.SESSIONS, 0.0), window=window)
    out.add(m.TIME_IN_APP_SECONDS, time_in_app, window=window)
    out.add(m.TIME_IN_APP_SECONDS_PER_USER, _ratio(time_in_app, users), window=window)
    paying_active = snapshot.distinct.get((s.PAYING_ACTIVE, window), 0)
    usage = _ratio(paying_active, paying)
    out.add(m.PRODUCT_USAGE_RATIO, None if usage is None else min(1.0, usage), window=window)


def churn_base(w: Mapping[str, float], paying_now: float) -> tuple[float, float, float]:
    """(S paying at the window's start, N new + reactivated, churned) for a window."""
    joined = w.get(b.ACCOUNTS_NEW, 0.0) + w.get(b.ACCOUNTS_REACTIVATED, 0.0)
    churned = w.get(b.ACCOUNTS_CHURNED, 0.0)
    return paying_now - (joined - churned), joined, churned


def _revenue(
    out: _Out,
    window: str,
    w: Mapping[str, float],
    gauges: Mapping[str, float],
    config: MetricConfig,
) -> None:
    currency = config.currency
    paying = gauges.get(b.PAYING, 0.0)
    for kind in b.MOVEMENT_KINDS:
        out.add(
            m.MRR_MOVEMENT,
            w.get(b.movement(kind), 0.0) / 100.0,
            currency=currency,
            kind=kind,
            window=window,
        )
    start, joined, churned = churn_base(w, paying)
    out.add(m.CHURNED_ACCOUNTS, churned, window=window)
    out.add(m.CHURN_RATIO, _ratio(churned, start), window=window)
    out.add(m.RETENTION_RATIO, _ratio(paying - joined, start), window=window)
    renewed = w.get(b.RENEWED, 0.0)
    out.add(
        m.RENEWAL_RATIO, _ratio(renewed, renewed + w.get(b.CANCELED_AT_TERM, 0.0)), window=window
    )
    converted = w.get(b.TRIALS_CONVERTED, 0.0)
    out.add(
        m.TRIAL_CONVERSION_RATIO,
        _ratio(converted, converted + w.get(b.TRIALS_EXPIRED, 0.0)),
        window=window,
    )
    out.add(
        m.RETENTION_COST,
        _ratio(w.get(b.COST_CENTS, 0.0) / 100.0, paying),
        currency=currency,
        window=window,
    )


def mrr_start_cents(w: Mapping[str, float], mrr_now_cents: float) -> float:
    """MRR at the window's start: MRR now minus the window's net movement (cents)."""
    net = sum(w.get(b.movement(k), 0.0) for k in ("new", "reactivation", "expansion"))
    net -= w.get(b.movement("contraction"), 0.0) + w.get(b.movement("churned"), 0.0)
    return mrr_now_cents - net


def _revenue_retention(
    out: _Out,
    window: str,
    w: Mapping[str, float],
    gauges: Mapping[str, float],
    config: MetricConfig,
) -> None:
    """Movement-based revenue retention (ChartMogul style): start + movements = now."""
    start = mrr_start_cents(w, gauges.get(b.MRR_CENTS, 0.0))
    gained = sum(w.get(b.movement(k), 0.0) for k in ("new", "reactivation"))
    expansion = w.get(b.movement("expansion"), 0.0)
    lost = w.get(b.movement("contraction"), 0.0) + w.get(b.movement("churned"), 0.0)
    out.add(m.MRR_START, start / 100.0, currency=config.currency, window=window)
    out.add(m.REVENUE_CHURN_RATIO, _ratio(lost, start), window=window)
    out.add(m.NRR_RATIO, _ratio(start + expansion - lost, start), window=window)
    out.add(m.GRR_RATIO, _ratio(start - lost, start), window=window)
    out.add(m.QUICK_RATIO, _ratio(gained + expansion, lost), window=window)


def _gauges(out: _Out, snapshot: Snapshot, config: MetricConfig) -> None:
    gauges, currency = snapshot.gauges, config.currency
    paying = gauges.get(b.PAYING, 0.0)
    mrr = gauges.get(b.MRR_CENTS, 0.0) / 100.0
    out.add(m.TICKETS_OPEN, gauges.get(tk.BACKLOG, 0.0))
    if snapshot.live_sessions is not None:
        out.add(m.SESSIONS_ACTIVE, snapshot.live_sessions)
    out.add(m.MRR, mrr, currency=currency)
    out.add(m.PAYING_ACCOUNTS, paying)
    arpa = _ratio(mrr, paying)
    out.add(m.ARPA, arpa, currency=currency)
    out.add(m.STICKINESS_RATIO, _stickiness(snapshot, config))
    churn_30d = _churn_ratio(snapshot, "30d", paying) if config.windows.by_name("30d") else None
    if arpa is not None and churn_30d:
        out.add(m.CLV, arpa * config.gross_margin / churn_30d, currency=currency)


def _stickiness(snapshot: Snapshot, config: MetricConfig) -> float | None:
    if not (config.windows.by_name("1d") and config.windows.by_name("30d")):
        return None
    return _ratio(
        snapshot.distinct.get((s.USERS, "1d"), 0), snapshot.distinct.get((s.USERS, "30d"), 0)
    )


def _churn_ratio(snapshot: Snapshot, window: str, paying: float) -> float | None:
    sums = snapshot.sums.get(window) or Fields({}, declared_fields())
    start, _joined, churned = churn_base(sums, paying)
    return _ratio(churned, start)
