"""The union of the partitions' last-seen members, and which calls a scrape makes."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from aggregators.distinct import DistinctQuery, distinct_names, united
from aggregators.windows import WindowSet

WINDOWS = WindowSet.parse("1h:60,1d:300,7d:3600,30d:3600")
T = 1_765_000_000.0


def test_window_starts_are_the_first_buckets_ascending() -> None:
    query = DistinctQuery.at(WINDOWS, T, ["u"], ["{logins:0}"])
    hour, day = (T // 3600) * 3600, (T // 300) * 300
    want = {
        "30d": hour - 719 * 3600,
        "7d": hour - 167 * 3600,
        "1d": day - 287 * 300,
        "1h": (T // 60) * 60 - 59 * 60,
    }
    assert query.bounds == tuple(sorted(want.values()))
    assert {name: query.bounds[j] for name, j in query.windows} == want


def test_one_partition_asks_for_counts_several_for_members() -> None:
    one = DistinctQuery.at(WINDOWS, T, ["u", "a"], ["{logins:0}"])
    two = DistinctQuery.at(WINDOWS, T, ["u", "a"], ["{logins:0}", "{logins:1}"])
    call = one.call("{logins:0}")
    assert call[:4] == [3, "cs:{logins:0}:z:u", "cs:{logins:0}:z:a", "cs:{logins:0}:guard"]
    assert msgspec.msgpack.decode(call[4]) == [str(b) for b in one.bounds]
    assert (call[5], two.call("{logins:1}")[5]) == ("0", "1")


def test_counts_of_one_partition_are_read_as_they_are() -> None:
    query = DistinctQuery.at(WINDOWS, T, ["u"], ["{logins:0}"])
    reply = [[9, 5, 3, 1]]  # at or after each start, oldest start first
    assert query.counts([reply]) == {
        ("u", "30d"): 9,
        ("u", "7d"): 5,
        ("u", "1d"): 3,
        ("u", "1h"): 1,
    }


def test_a_member_of_two_partitions_counts_once_at_its_newest() -> None:
    # bounds: 30d, 7d, 1d, 1h; ann is 1h-recent on p1 but only 30d on p0
    p0 = [[b"ann", b"bob"], [], [b"cat"], []]
    p1 = [[b"bob"], [b"cat"], [], [b"ann"]]
    assert united([p0, p1]) == [3, 2, 2, 1]
    query = DistinctQuery.at(WINDOWS, T, ["u"], ["{logins:0}", "{logins:1}"])
    assert query.counts([[p0], [p1]]) == {
        ("u", "30d"): 3,
        ("u", "7d"): 2,
        ("u", "1d"): 2,
        ("u", "1h"): 1,
    }


def test_no_usage_partition_counts_nothing() -> None:
    assert DistinctQuery.at(WINDOWS, T, ["u"], []).counts([]) == {}
    assert united([]) == []


def test_names_cover_users_and_accounts_per_plan() -> None:
    assert distinct_names(["team", "none"]) == ["u", "u@team", "u@none", "a", "a@team", "a@none"]


latest = st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 99), max_size=8)


@given(st.lists(latest, min_size=2, max_size=4), st.lists(st.integers(0, 99), min_size=1))
def test_united_counts_each_member_by_its_latest_time_anywhere(
    partitions: list[dict[str, int]], starts: list[int]
) -> None:
    bounds = sorted(set(starts))
    groups = [
        [
            [m.encode() for m, ts in p.items() if low <= ts < high]
            for low, high in zip(bounds, [*bounds[1:], 100], strict=True)
        ]
        for p in partitions
    ]
    newest: dict[str, int] = {}
    for p in partitions:
        for member, ts in p.items():
            newest[member] = max(ts, newest.get(member, ts))
    assert united(groups) == [sum(ts >= low for ts in newest.values()) for low in bounds]
