"""Comment sentiment with VADER, a lexicon and rule-based classifier.

VADER (vaderSentiment on PyPI) ships its lexicon inside the wheel, needs no
download or model at run time, is tuned for short social/feedback text, and
classifies a comment in tens of microseconds. Its compound score is in
[-1, 1]; the customary cut-offs are >= 0.05 positive and <= -0.05 negative.
"""

from __future__ import annotations

from functools import cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

SENTIMENTS = ("positive", "neutral", "negative")


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def classify(comment: str, threshold: float = 0.05) -> str:
    """positive, neutral or negative for one comment."""
    compound = float(_analyzer().polarity_scores(comment)["compound"])
    if compound >= threshold:
        return "positive"
    if compound <= -threshold:
        return "negative"
    return "neutral"
