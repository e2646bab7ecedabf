"""Scores written as text read back as the same doubles, by the shortcut or by repr."""

import math

from hypothesis import given
from hypothesis import strategies as st

from aggregators.store import score_text, scored


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_whole_milliseconds_take_the_short_form_and_read_back_exactly(ms: int) -> None:
    value = ms / 1000
    text = score_text(value)
    assert text == f"{ms}e-3"
    assert float(text) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_score_reads_back_exactly(value: float) -> None:
    assert float(score_text(value)) == value


def test_a_score_off_the_millisecond_grid_is_written_by_repr() -> None:
    assert score_text(1.0001) == "1.0001"
    assert score_text(1765143904.123456) == repr(1765143904.123456)


def test_scores_not_finite_are_written_by_repr() -> None:
    assert score_text(math.inf) == "inf"
    assert scored([1.5, -math.inf], ["a", "b"], 2) == ["1500e-3", "a", "-inf", "b"]


@given(st.lists(st.floats(allow_nan=False), max_size=20))
def test_scored_pairs_each_member_with_its_score(values: list[float]) -> None:
    members = [str(i) for i in range(len(values))]
    pairs = scored(values, members, len(values))
    assert pairs[1::2] == members
    assert pairs[0::2] == [score_text(v) for v in values]
