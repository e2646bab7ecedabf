"""Window and bucket arithmetic against hand-computed values."""

from __future__ import annotations

import pytest

from aggregators.windows import (
    DEFAULT_WINDOWS,
    WindowSet,
    bucket_of,
    bucket_ttl,
    in_window,
    is_too_late,
    parse_duration,
    retention_cutoff,
)

WINDOWS = WindowSet.parse(DEFAULT_WINDOWS)
HOUR = WINDOWS.by_name("1h")
assert HOUR is not None


def test_default_windows_and_granularities() -> None:
    assert [(w.name, w.seconds, w.granularity) for w in WINDOWS] == [
        ("1h", 3600, 60),
        ("1d", 86400, 300),
        ("7d", 604800, 3600),
        ("30d", 2592000, 3600),
    ]
    assert WINDOWS.granularities == (60, 300, 3600)
    assert WINDOWS.longest.name == "30d"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("1h", 3600), ("7d", 604800), ("2w", 1209600), ("60", 60)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_bad_window_specs_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        WindowSet.parse("1x")
    with pytest.raises(ValueError, match="whole number"):
        WindowSet.parse("1h:7m")
    with pytest.raises(ValueError, match="repeat"):
        WindowSet.parse("1h,1h")


def test_bucket_of_floors_including_negative_times() -> None:
    assert bucket_of(119.999, 60) == 1
    assert bucket_of(120.0, 60) == 2
    assert bucket_of(-0.5, 60) == -1


def test_window_membership_is_the_contract_formula() -> None:
    # t = 10_000 s -> current 60 s bucket 166; 1h holds buckets 107..166, i.e. [6420, 10020)
    t = 10_000.0
    assert HOUR.bucket_range(t) == (107, 166)
    assert in_window(6420.0, HOUR, t)
    assert not in_window(6419.999, HOUR, t)
    assert in_window(10_019.0, HOUR, t)  # the current, partial bucket (future part included)
    assert not in_window(10_020.0, HOUR, t)


def test_too_late_is_older_than_every_retained_bucket() -> None:
    # longest window 30d at g=3600: at t, the oldest kept bucket is floor(t/3600) - 720
    t = 1_800_000_000.0
    oldest = (int(t // 3600) - 720) * 3600
    assert retention_cutoff(WINDOWS, t) == oldest
    assert not is_too_late(oldest, WINDOWS, t)
    assert is_too_late(oldest - 0.001, WINDOWS, t)


def test_bucket_ttl_keeps_a_bucket_for_its_window_plus_one() -> None:
    # 60 s bucket 100 ends at 6060; retention of g=60 is 3600 + 60 -> expires at 9720
    assert bucket_ttl(100, 60, WINDOWS, 6000.0) == 3720
    assert bucket_ttl(100, 60, WINDOWS, 9700.0) == 60  # never below one granularity
