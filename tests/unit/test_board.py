"""The board's pure parts: number formats, percentiles, sparklines, the page's escaping."""

from __future__ import annotations

from aggregators.config import MetricConfig
from aggregators.series import hourly_granularity
from aggregators.windows import WindowSet
from streams.board import BoardData, fmt, render, sparkline, value_of


def data() -> BoardData:
    return BoardData({}, {}, 0.0, True, {}, None, [])


def histogram(counts: list[float]) -> BoardData:
    """1d first-response buckets with these cumulative counts (le 60 ... +Inf)."""
    bounds = ["60.0", "300.0", "900.0", "1800.0", "3600.0", "14400.0", "28800.0", "86400.0"]
    bounds += ["259200.0", "+Inf"]
    board = data()
    for le, count in zip(bounds, counts, strict=True):
        labels = (("le", le), ("window", "1d"))
        board.samples[("cs_first_response_seconds_bucket", labels)] = count
    return board


def test_percentiles_interpolate_inside_their_bucket_like_prometheus() -> None:
    board = histogram([2, 6, 10, 10, 10, 10, 10, 10, 10, 10])
    # median: rank 5 of 10 lies in (60, 300] holding ranks 3-6: 60 + 240 * (5 - 2) / 4
    assert value_of(board, "p50:cs_first_response_seconds", {}) == 240.0
    # p90: rank 9 in (300, 900] holding ranks 7-10: 300 + 600 * 3 / 4
    assert value_of(board, "p90:cs_first_response_seconds", {}) == 750.0
    assert value_of(histogram([0] * 10), "p90:cs_first_response_seconds", {}) is None
    # everything above the last finite bound: the bound itself, as histogram_quantile does
    assert value_of(histogram([0] * 9 + [4]), "p50:cs_first_response_seconds", {}) == 259200.0


def test_formats() -> None:
    assert fmt(None, "ratio") == "&ndash;"
    assert fmt(0.8766, "ratio") == "87.7%"
    assert fmt(56512.4, "money") == "$56,512"
    assert fmt(45, "s") == "45 s" and fmt(540, "s") == "9 min" and fmt(7200, "s") == "2.0 h"
    assert fmt(-12.34, "score") == "-12.3"


def test_sparkline_scales_points_and_breaks_at_gaps() -> None:
    svg = sparkline([[0, 1.0], [1, 3.0], [2, None], [3, 2.0], [4, 2.0]], width=40, height=48)
    assert svg.count("<polyline") == 2  # two runs, split by the missing hour
    assert 'points="0.0,44.0 10.0,4.0"' in svg  # min at the bottom, max at the top
    assert "spark empty" in sparkline([[0, None], [1, None]])
    assert "<circle" in sparkline([[0, None], [1, 5.0]])  # a lone point is still shown


def test_hourly_sparklines_use_the_hourly_buckets() -> None:
    assert hourly_granularity(MetricConfig()) == 3600
    five_minutes = MetricConfig(windows=WindowSet.parse("1h:60,1d:300"))
    assert hourly_granularity(five_minutes) == 300


def test_page_escapes_account_ids_and_reasons() -> None:
    board = data()
    board.risky = [
        {"account": "<script>x</script>", "score": 12.0, "band": "at_risk", "reasons": ["a&b"]}
    ]
    page = render(board, {}, {"Events applied": 3})
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page
    assert '<meta http-equiv="refresh"' in page and "http://" not in page and "https://" not in page
