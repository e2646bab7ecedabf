"""Voice of the customer: responses, NPS, CSAT, CES and comment sentiment.

Survey answers are independent facts, so the family is stateless: each
answer adds to its bucket's counters. Comment text is classified in memory
and never written anywhere.
"""

from __future__ import annotations

from aggregators.config import BatchClock, MetricConfig
from aggregators.effects import Contribution, Effects, Gauges
from aggregators.families.base import State
from aggregators.sentiment import classify
from schemas import Event

CSAT_DEFAULT_SCALE = 5


def responses(kind: str) -> str:
    return f"responses_{kind}"


NPS_PROMOTERS = "nps_promoters"
NPS_DETRACTORS = "nps_detractors"
CSAT_SATISFIED = "csat_satisfied"
CES_SUM = "ces_sum"


def comments(sentiment: str) -> str:
    return f"comments_{sentiment}"


class SurveyFamily:
    """Stateless: no entity."""

    def entity_key(self, event: Event) -> str | None:
        return None

    def new_state(self, event: Event) -> State:
        raise NotImplementedError("surveys keep no entity state")

    def update(self, state: State, event: Event, offset: int, effects: Effects) -> None:
        raise NotImplementedError("surveys keep no entity state")

    def count(self, event: Event, effects: Effects, config: MetricConfig) -> None:
        data = event.data
        kind, score = data.kind, data.score  # type: ignore[union-attr]
        grans = config.granularities
        effects.count(responses(kind), event.time, 1, grans, event.account_id)
        if kind == "nps":
            if score >= 9:
                effects.count(NPS_PROMOTERS, event.time, 1, grans, event.account_id)
            elif score <= 6:
                effects.count(NPS_DETRACTORS, event.time, 1, grans, event.account_id)
        elif kind == "csat":
            scale = data.scale_max or CSAT_DEFAULT_SCALE  # type: ignore[union-attr]
            if score >= config.csat_thresholds[scale]:
                effects.count(CSAT_SATISFIED, event.time, 1, grans, event.account_id)
        elif kind == "ces":
            effects.count(CES_SUM, event.time, score, grans, event.account_id)
        comment = data.comment  # type: ignore[union-attr]
        if comment and comment.strip():
            sentiment = classify(comment, config.sentiment_threshold)
            effects.count(comments(sentiment), event.time, 1, grans, event.account_id)

    def note(self, facts: State, event: Event, config: MetricConfig) -> None:
        """The account's NPS [score sum, answers] and CSAT [satisfied, answers]."""
        data = event.data
        kind, score = data.kind, data.score  # type: ignore[union-attr]
        if kind == "nps":
            total, n = facts.get("nps", [0, 0])
            facts["nps"] = [total + score, n + 1]
        elif kind == "csat":
            scale = data.scale_max or CSAT_DEFAULT_SCALE  # type: ignore[union-attr]
            satisfied, n = facts.get("csat", [0, 0])
            facts["csat"] = [satisfied + (score >= config.csat_thresholds[scale]), n + 1]

    def contribute(self, state: State, config: MetricConfig) -> tuple[Contribution, Gauges]:
        return {}, {}

    def finish(
        self, key: str, state: State, effects: Effects, config: MetricConfig, clock: BatchClock
    ) -> State | None:
        return state
