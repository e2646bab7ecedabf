"""PlanHistory answers as metrics.md words it: the latest naming at or before T, by offset on a tie.

The expectations here are computed from that sentence directly (a scan of every
entry), not from the history's own search."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aggregators.plans import NONE, PlanEntry, PlanHistory

TIMES = st.sampled_from([0.0, 1.0, 1.5, 2.0, 10.0, 10.5, 99.0])
ENTRIES = st.lists(
    st.tuples(TIMES, st.integers(0, 50), st.sampled_from(["team", "pro", "free"])),
    max_size=12,
    unique_by=lambda entry: entry[1],  # an offset names one event
)


def plan_by_the_spec(entries: list[PlanEntry], t: float) -> str:
    """The label of the entry with the greatest (time, offset) among those at or before t."""
    before = [entry for entry in entries if entry[0] <= t]
    return max(before)[2] if before else NONE


@given(ENTRIES, TIMES)
def test_the_plan_at_t_is_the_latest_naming_at_or_before_t(
    entries: list[PlanEntry], t: float
) -> None:
    history = PlanHistory({"acme": entries})
    assert history.at("acme", t) == plan_by_the_spec(entries, t)
    assert history.at("other", t) == NONE


@given(ENTRIES, TIMES, TIMES)
def test_constant_names_the_plan_only_when_no_naming_falls_inside(
    entries: list[PlanEntry], a: float, b: float
) -> None:
    lo, hi = min(a, b), max(a, b)
    changes = any(lo < time <= hi for time, _offset, _label in entries)
    expected = None if changes else plan_by_the_spec(entries, lo)
    assert PlanHistory({"acme": entries}).constant("acme", lo, hi) == expected


def test_a_tie_in_time_goes_to_the_later_offset_whatever_the_arrival_order() -> None:
    history = PlanHistory({"acme": [(5.0, 9, "pro")]})
    history.extend("acme", [(5.0, 3, "team"), (1.0, 1, "free")])
    assert [history.at("acme", t) for t in (0.5, 1.0, 4.9, 5.0, 6.0)] == [
        NONE,
        "free",
        "free",
        "pro",
        "pro",
    ]


def test_merged_adds_entries_to_a_copy_and_leaves_the_original() -> None:
    history = PlanHistory({"acme": [(1.0, 1, "free")]})
    merged = history.merged({"acme": [(3.0, 7, "pro")], "beta": [(0.0, 2, "team")]})
    assert (merged.at("acme", 3.0), merged.at("beta", 0.0)) == ("pro", "team")
    assert (history.at("acme", 3.0), history.at("beta", 0.0)) == ("free", NONE)
