"""Bucket lifetimes and the rolling windows' cursor arguments (pure)."""

from __future__ import annotations

from aggregators.rolling import bucket_ttl, retention, ttl_base, window_specs
from aggregators.windows import WindowSet

WINDOWS = WindowSet.parse("1h:60,1d:300,7d:3600,30d:3600")
NOW = 1_790_000_000.0


def test_a_bucket_lives_its_longest_window_plus_two_buckets() -> None:
    assert retention(WINDOWS, 60) == 3600 + 120
    assert retention(WINDOWS, 3600) == 30 * 86400 + 7200  # the longest of 7d and 30d
    bucket = int(NOW // 60)
    assert bucket_ttl(bucket, 60, WINDOWS, NOW) == (bucket + 1) * 60 + 3720 - int(NOW)


def test_ttl_never_below_one_granularity() -> None:
    assert bucket_ttl(0, 300, WINDOWS, NOW) == 300


def test_ttls_on_an_empty_redis_are_not_counted_from_t_zero() -> None:
    """clock=watermark starts at t = 0 before any event is applied."""
    newest = NOW
    base = ttl_base(0.0, newest)
    assert base == newest - 3600
    bucket = int(newest // 3600)
    ttl = bucket_ttl(bucket, 3600, WINDOWS, base)
    assert 30 * 86400 < ttl <= 30 * 86400 + 3 * 3600 + 3600
    assert bucket_ttl(bucket, 3600, WINDOWS, 0.0) > 50 * 365 * 86400  # what it used to be


def test_ttl_base_is_the_clock_when_it_is_not_far_behind() -> None:
    assert ttl_base(NOW, NOW + 200) == NOW
    assert ttl_base(NOW, None) == NOW


def test_window_specs_start_at_each_window_first_bucket() -> None:
    specs = {s[0]: s for s in window_specs(WINDOWS, NOW)}
    _, g, low, n, span = specs["30d"]
    assert (g, n, span) == (3600, 720, 30 * 86400 + 3600)
    assert low == int(NOW // 3600) - 720 + 1
    assert specs["1h"][2] == int(NOW // 60) - 60 + 1
