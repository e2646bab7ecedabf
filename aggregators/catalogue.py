"""Every business metric of ``/metrics``, once: name, help text, type and labels.

:mod:`aggregators.readout` emits samples under these names and the exporter
takes help and type from here, so a metric is added or renamed in one place.
Every business metric also carries ``plan`` (``all`` for the whole base);
gauge histograms add ``le`` to their ``_bucket`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricDef:
    name: str
    help: str
    kind: Literal["gauge", "gaugehistogram"] = "gauge"
    labels: tuple[str, ...] = ()
    """Label names besides ``plan`` (and ``le`` of histogram buckets)."""


TICKETS_OPENED = MetricDef("cs_tickets_opened", "Tickets opened in the window", labels=("window",))
TICKETS_RESOLVED = MetricDef(
    "cs_tickets_resolved", "Tickets first resolved in the window", labels=("window",)
)
FCR_RATIO = MetricDef(
    "cs_fcr_ratio",
    "First-contact resolution share of tickets resolved in the window",
    labels=("window",),
)
FIRST_RESPONSE_SECONDS_AVG = MetricDef(
    "cs_first_response_seconds_avg",
    "Mean time from opening to first agent reply",
    labels=("window",),
)
RESOLUTION_SECONDS_AVG = MetricDef(
    "cs_resolution_seconds_avg", "Mean time from opening to first resolution", labels=("window",)
)
FIRST_RESPONSE_SECONDS = MetricDef(
    "cs_first_response_seconds",
    "Time from opening to first agent reply, tickets first answered in the window",
    "gaugehistogram",
    labels=("window",),
)
RESOLUTION_SECONDS = MetricDef(
    "cs_resolution_seconds",
    "Time from opening to first resolution, tickets first resolved in the window",
    "gaugehistogram",
    labels=("window",),
)
TICKETS_OPEN = MetricDef("cs_tickets_open", "Tickets open now (backlog)")
SURVEY_RESPONSES = MetricDef(
    "cs_survey_responses", "Survey responses in the window", labels=("kind", "window")
)
NPS = MetricDef("cs_nps", "Net Promoter Score (-100..100)", labels=("window",))
CSAT_RATIO = MetricDef("cs_csat_ratio", "Satisfied share of CSAT answers", labels=("window",))
CES_AVG = MetricDef(
    "cs_ces_avg", "Mean customer effort score (1-7, higher is easier)", labels=("window",)
)
FEEDBACK_COMMENTS = MetricDef(
    "cs_feedback_comments", "Survey comments by sentiment", labels=("sentiment", "window")
)
ACTIVE_USERS = MetricDef(
    "cs_active_users", "Distinct users with a session event in the window", labels=("window",)
)
ACTIVE_ACCOUNTS = MetricDef(
    "cs_active_accounts", "Distinct accounts with a session event in the window", labels=("window",)
)
STICKINESS_RATIO = MetricDef("cs_stickiness_ratio", "Active users 1d / active users 30d")
PRODUCT_USAGE_RATIO = MetricDef(
    "cs_product_usage_ratio",
    "Active accounts in the window / paying accounts now",
    labels=("window",),
)
SESSIONS = MetricDef("cs_sessions", "Sessions started in the window", labels=("window",))
TIME_IN_APP_SECONDS = MetricDef(
    "cs_time_in_app_seconds", "Active time in app in the window", labels=("window",)
)
TIME_IN_APP_SECONDS_PER_USER = MetricDef(
    "cs_time_in_app_seconds_per_user", "Active time in app per active user", labels=("window",)
)
SESSIONS_ACTIVE = MetricDef("cs_sessions_active", "Sessions live now")
MRR = MetricDef("cs_mrr", "Monthly recurring revenue now (major units)", labels=("currency",))
MRR_MOVEMENT = MetricDef(
    "cs_mrr_movement",
    "MRR movements in the window by kind (major units)",
    labels=("currency", "kind", "window"),
)
PAYING_ACCOUNTS = MetricDef("cs_paying_accounts", "Accounts paying now")
CHURNED_ACCOUNTS = MetricDef(
    "cs_churned_accounts", "Paying -> not paying transitions in the window", labels=("window",)
)
CHURN_RATIO = MetricDef(
    "cs_churn_ratio", "Churned accounts / paying accounts at the window's start", labels=("window",)
)
RETENTION_RATIO = MetricDef(
    "cs_retention_ratio",
    "(paying now - new and reactivated) / paying at the window's start",
    labels=("window",),
)
RENEWAL_RATIO = MetricDef(
    "cs_renewal_ratio", "Renewals / (renewals + cancellations at term end)", labels=("window",)
)
TRIAL_CONVERSION_RATIO = MetricDef(
    "cs_trial_conversion_ratio", "Trials converted / (converted + expired)", labels=("window",)
)
ARPA = MetricDef("cs_arpa", "Average revenue per paying account", labels=("currency",))
CLV = MetricDef(
    "cs_clv", "Customer lifetime value: ARPA x gross margin / 30-day churn", labels=("currency",)
)
RETENTION_COST = MetricDef(
    "cs_retention_cost",
    "Customer-success cost in the window per paying account",
    labels=("currency", "window"),
)
PAYMENT_FAILURES = MetricDef(
    "cs_payment_failures", "Failed invoices in the window", labels=("window",)
)
ACCOUNTS_BY_HEALTH = MetricDef(
    "cs_accounts_by_health", "Accounts per health band", labels=("band",)
)
HEALTH_SCORE_AVG = MetricDef("cs_health_score_avg", "Mean account health score")
MRR_START = MetricDef(
    "cs_mrr_start",
    "MRR at the window's start: MRR now minus the window's movements",
    labels=("currency", "window"),
)
REVENUE_CHURN_RATIO = MetricDef(
    "cs_revenue_churn_ratio",
    "(churned + contraction MRR) / MRR at the window's start",
    labels=("window",),
)
NRR_RATIO = MetricDef(
    "cs_nrr_ratio",
    "Net revenue retention: (start + expansion - contraction - churned) / start",
    labels=("window",),
)
GRR_RATIO = MetricDef(
    "cs_grr_ratio",
    "Gross revenue retention: (start - contraction - churned) / start",
    labels=("window",),
)
QUICK_RATIO = MetricDef(
    "cs_quick_ratio",
    "SaaS quick ratio: (new + reactivation + expansion) / (contraction + churned)",
    labels=("window",),
)

CATALOGUE: dict[str, MetricDef] = {
    m.name: m for m in list(globals().values()) if isinstance(m, MetricDef)
}
"""Metric name -> its definition."""
