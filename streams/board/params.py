"""Strict query parameters of the board and its JSON endpoints.

A typo must not read as "no data": an unknown parameter, metric, label or
value, or a number out of range, is refused with 400 and a message that
names the parameter and what it accepts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from aggregators.catalogue import CATALOGUE, MetricDef
from aggregators.families.billing import MOVEMENT_KINDS
from aggregators.plans import ALL
from aggregators.readout import SURVEY_KINDS
from aggregators.sentiment import SENTIMENTS

Query = Mapping[str, list[str]]

LABEL_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("cs_survey_responses", "kind"): SURVEY_KINDS,
    ("cs_mrr_movement", "kind"): MOVEMENT_KINDS,
    ("cs_feedback_comments", "sentiment"): SENTIMENTS,
}
"""(metric, label) -> the values it takes; every such label must be given."""
VIEWS = {"24h": 24, "7d": 7 * 24, "30d": 30 * 24}
"""The board's windows: name -> hours charted."""
MAX_LIMIT = 1000


class BadParameter(ValueError):
    """A query parameter the endpoint refuses; the message names it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def only(query: Query, allowed: Collection[str]) -> None:
    """Refuse parameters the endpoint does not know, and repeated ones."""
    for name, values in query.items():
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadParameter(name, f"unknown parameter; this endpoint takes: {known}")
        if len(values) > 1:
            raise BadParameter(name, "given more than once")


def integer(query: Query, name: str, default: int, low: int, high: int) -> int:
    """An integer parameter within [low, high]."""
    raw = query.get(name, [str(default)])[0]
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"must be an integer from {low} to {high}, not {raw!r}") from None
    if not low <= value <= high:
        raise BadParameter(name, f"must be from {low} to {high}, not {value}")
    return value


def choice(query: Query, name: str, default: str, allowed: Collection[str]) -> str:
    """A parameter whose value is one of ``allowed``."""
    value = query.get(name, [default])[0]
    if value not in allowed:
        raise BadParameter(name, f"unknown value {value!r}; one of: {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class SeriesQuery:
    metric: str
    labels: dict[str, str]
    plan: str
    hours: int


def series_query(query: Query, plans: Collection[str], max_hours: int) -> SeriesQuery:
    """``/api/series``: a windowed metric (or ``cs_mrr``), its labels, a plan, hours."""
    metric = _metric(query.get("metric", [""])[0])
    label_names = [n for n in metric.labels if n not in ("window", "currency")]
    only(query, {"metric", "hours", "plan", *label_names})
    labels = {}
    for name in label_names:
        allowed = LABEL_VALUES[(metric.name, name)]
        if name not in query:
            raise BadParameter(name, f"required for {metric.name}: one of {', '.join(allowed)}")
        labels[name] = choice(query, name, "", allowed)
    plan = choice(query, "plan", ALL, plans)
    hours = integer(query, "hours", 24, 1, max_hours)
    return SeriesQuery(metric.name, labels, plan, hours)


def _metric(name: str) -> MetricDef:
    example = "e.g. metric=cs_tickets_opened"
    if not name:
        raise BadParameter("metric", f"required, {example}")
    found = CATALOGUE.get(name)
    if found is None:
        raise BadParameter("metric", f"unknown metric {name!r}; {example}")
    if found.kind != "gauge" or ("window" not in found.labels and name != "cs_mrr"):
        charted = sorted(
            m.name
            for m in CATALOGUE.values()
            if m.kind == "gauge" and ("window" in m.labels or m.name == "cs_mrr")
        )
        raise BadParameter("metric", f"{name} has no hourly series; these do: {', '.join(charted)}")
    return found


@dataclass(frozen=True)
class View:
    """What the board shows: one plan (or the whole base) over one window."""

    plan: str = ALL
    window: str = "24h"

    @property
    def hours(self) -> int:
        return VIEWS[self.window]

    def href(self, path: str = "/", **change: str) -> str:
        """This view's link, with some parameters changed (defaults left out)."""
        values = {"plan": self.plan, "window": self.window, **change}
        pairs = [f"{k}={quote(v, safe='')}" for k, v in values.items() if v != getattr(View(), k)]
        return path + ("?" + "&".join(pairs) if pairs else "")


def view_query(query: Query, plans: Collection[str]) -> View:
    """``/`` and ``/accounts/<id>``: ``plan`` and ``window``."""
    only(query, {"plan", "window"})
    return View(choice(query, "plan", ALL, plans), choice(query, "window", "24h", list(VIEWS)))


def limit_query(query: Query) -> int:
    """``/accounts/at-risk``: ``limit`` only."""
    only(query, {"limit"})
    return integer(query, "limit", 20, 1, MAX_LIMIT)
