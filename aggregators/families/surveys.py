"""Voice of the customer: responses, NPS, CSAT, CES and comment sentiment.

Survey answers are independent facts, so the family is stateless: each
answer adds to its bucket's counters. Comment text is classified in memory
and never written anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from aggregators.config import MetricConfig
from aggregators.effects import Tally
from aggregators.facts import SURVEYS, SurveyFacts
from aggregators.families.base import Change, Family
from aggregators.sentiment import SENTIMENTS, classify
from schemas import Event
from schemas.models import CSAT_DEFAULT_MAX, SurveyAnswered

NPS_PROMOTERS = "nps_promoters"
NPS_DETRACTORS = "nps_detractors"
CSAT_SATISFIED = "csat_satisfied"
CES_SUM = "ces_sum"


def responses(kind: str) -> str:
    return f"responses_{kind}"


def comments(sentiment: str) -> str:
    return f"comments_{sentiment}"


_RESPONSES = {kind: responses(kind) for kind in ("nps", "csat", "ces")}


def is_satisfied(answer: SurveyAnswered, config: MetricConfig) -> bool:
    """CSAT satisfied: the score reaches its scale's configured threshold."""
    return answer.score >= config.csat_thresholds[answer.scale_max or CSAT_DEFAULT_MAX]


class Surveys:
    """Stateless: each answer counts in its bucket."""

    facts_type = SurveyFacts

    def count(self, event: Event, segment: str, tally: Tally, config: MetricConfig) -> None:
        answer = event.data
        if not isinstance(answer, SurveyAnswered):
            return
        ts, kind, score = event.time, answer.kind, answer.score
        tally.add(_RESPONSES[kind], segment, ts, 1)
        if kind == "nps":
            if score >= 9:
                tally.add(NPS_PROMOTERS, segment, ts, 1)
            elif score <= 6:
                tally.add(NPS_DETRACTORS, segment, ts, 1)
        elif kind == "csat":
            if is_satisfied(answer, config):
                tally.add(CSAT_SATISFIED, segment, ts, 1)
        else:
            tally.add(CES_SUM, segment, ts, score)
        comment = answer.comment
        if comment and comment.strip():
            sentiment = classify(comment, config.sentiment_threshold)
            tally.add(comments(sentiment), segment, ts, 1)

    def facts(
        self,
        previous: SurveyFacts,
        events: Sequence[Event],
        changes: Sequence[Change[msgspec.Struct]],
        config: MetricConfig,
    ) -> SurveyFacts:
        """The account's NPS score sum and answers, CSAT satisfied and answers."""
        for event in events:
            match event.data:
                case SurveyAnswered(kind="nps", score=score):
                    previous.nps_sum += score
                    previous.nps_answers += 1
                case SurveyAnswered(kind="csat") as answer:
                    previous.csat_satisfied += is_satisfied(answer, config)
                    previous.csat_answers += 1
        return previous


_SURVEYS = Surveys()
FIELDS = frozenset(
    {NPS_PROMOTERS, NPS_DETRACTORS, CSAT_SATISFIED, CES_SUM, *_RESPONSES.values()}
    | {comments(sentiment) for sentiment in SENTIMENTS}
)
"""The counter fields surveys write."""
FAMILY: Family[msgspec.Struct, SurveyFacts] = Family(SURVEYS, _SURVEYS, None, _SURVEYS, FIELDS)
