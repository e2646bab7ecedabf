"""The board's pure parts: formats, percentiles, charts, links and the page's escaping."""

from __future__ import annotations

import re

from aggregators.config import MetricConfig
from aggregators.readout import Snapshot
from aggregators.series import Buckets, hourly_granularity, max_hours, steps
from aggregators.windows import WindowSet
from streams.board.charts import Line, Stack, bar_chart, line_chart, nice_ticks
from streams.board.data import BoardData, value_of
from streams.board.format import duration, fmt, formatter
from streams.board.page import render
from streams.board.params import View


def data(view: View | None = None) -> BoardData:
    return BoardData(view or View(), {}, 0.0)


def histogram(counts: list[float], window: str = "1d") -> BoardData:
    """First-response buckets of ``window`` with these cumulative counts (le 60 ... +Inf)."""
    bounds = ["60.0", "300.0", "900.0", "1800.0", "3600.0", "14400.0", "28800.0", "86400.0"]
    bounds += ["259200.0", "+Inf"]
    board = data()
    for le, count in zip(bounds, counts, strict=True):
        labels = (("le", le), ("window", window))
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


def test_percentiles_read_the_window_the_page_shows() -> None:
    board = histogram([2, 6, 10, 10, 10, 10, 10, 10, 10, 10], window="7d")
    assert value_of(board, "p50:cs_first_response_seconds", {}) is None  # 24h view: 1d
    board.view = View(window="7d")
    assert value_of(board, "p50:cs_first_response_seconds", {}) == 240.0


def test_formats() -> None:
    assert fmt(None, "ratio") == "&ndash;"
    assert fmt(0.8766, "ratio") == "87.7%"
    assert fmt(56512.4, "money") == "$56,512" and fmt(256000, "money") == "$256k"
    assert fmt(-1200, "money") == "-$1,200"
    assert duration(45) == "45 s" and duration(540) == "9 min" and duration(7200) == "2.0 h"
    assert fmt(-12.34, "score") == "-12.3"
    assert formatter("count")(1234.0) == "1,234" and formatter("count")(2.5) == "2.5"


def test_axis_ticks_are_round_and_cover_the_values() -> None:
    assert nice_ticks(0, 37) == [0, 10, 20, 30, 40]
    assert nice_ticks(-900, 1400) == [-1000, 0, 1000, 2000]
    # durations step in whole minutes or hours, not 5,000 s
    assert nice_ticks(0, 15000, steps=(60, 300, 3600, 7200)) == [0, 7200, 14400, 21600]


HOUR = 3600


def test_line_chart_has_a_title_axes_and_a_hover_title_per_point() -> None:
    points = [(100 * HOUR, 1.0), (101 * HOUR, 3.0), (102 * HOUR, None), (103 * HOUR, 2.0)]
    svg = line_chart("Tickets per hour", [Line("opened", "s1", points)], formatter("count"), 24)
    assert svg.startswith('<svg class="chart"') and "<title>Tickets per hour</title>" in svg
    assert svg.count("<circle") == 3  # the missing hour has no point
    assert svg.count("<polyline") == 1  # the run after the gap has one point only
    # 100 h after the epoch is 1970-01-05 04:00 UTC
    assert "<title>opened, 1970-01-05 04:00 UTC: 1</title>" in svg
    assert "<title>opened, 1970-01-05 07:00 UTC: 2</title>" in svg
    assert ">04:00<" in svg  # an x label with the hour
    ys = [float(y) for y in re.findall(r'<circle class="s1" cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert ys[1] < ys[2] < ys[0]  # 3 above 2 above 1
    empty = line_chart("NPS", [Line("NPS", "s1", [(0, None)])], formatter("score"), 24)
    assert "<title>NPS: no data yet</title>" in empty


def test_bar_chart_stacks_gains_above_and_losses_below_the_axis() -> None:
    day = 86400
    stacks = [
        Stack("New", "mv-new", 1, [(0, 300.0), (day, 0.0)]),
        Stack("Expansion", "mv-expansion", 1, [(0, 100.0), (day, 0.0)]),
        Stack("Churned", "mv-churned", -1, [(0, 200.0), (day, 0.0)]),
    ]
    svg = bar_chart("MRR movements", stacks, formatter("money"), 24 * 7)
    assert "<title>Churned, 1970-01-01 00:00 UTC: -$200</title>" in svg
    rects = re.findall(r'<rect class="(mv-\w+)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" '
                       r'height="([\d.]+)"', svg)  # fmt: skip
    by = {css: (float(y), float(h)) for css, y, h in rects}
    zero = float(re.search(r'class="zero" x1="\d+" x2="\d+" y1="([\d.]+)"', svg)[1])  # type: ignore[index]
    assert abs(by["mv-new"][0] + by["mv-new"][1] - zero) < 0.2  # new sits on the axis
    assert abs(by["mv-expansion"][0] + by["mv-expansion"][1] - by["mv-new"][0]) < 0.2
    assert abs(by["mv-churned"][0] - zero) < 0.2  # churned hangs below it
    assert abs(by["mv-new"][1] / by["mv-churned"][1] - 1.5) < 0.01  # 300 vs 200
    assert len(rects) == 3  # zero-value segments are not drawn


def test_steps_sum_buckets_and_apply_the_formula_per_step() -> None:
    """Four hourly buckets in steps of two: counts add up, ratios divide the sums."""
    sums = [
        {"tickets_resolved": 2.0, "fcr_resolved": 1.0, "tickets_opened": 1.0},
        {"tickets_resolved": 2.0, "fcr_resolved": 2.0},
        {"tickets_opened": 4.0},
        {},
    ]
    snapshots = [Snapshot(sums={"bucket": s}) for s in sums]
    buckets = Buckets(3600, 10, snapshots, {"all": 5000.0})
    two = steps(buckets, MetricConfig(), "all", 2)
    assert two.starts == [10 * HOUR, 12 * HOUR]
    assert two.pick("cs_tickets_opened", {}) == [(10 * HOUR, 1.0), (12 * HOUR, 4.0)]
    assert two.pick("cs_fcr_ratio", {}) == [(10 * HOUR, 0.75), (12 * HOUR, None)]
    assert two.pick("cs_mrr", {}) == [(10 * HOUR, 50.0), (12 * HOUR, 50.0)]
    assert steps(buckets, MetricConfig(), "team", 2).pick("cs_tickets_opened", {}) == [
        (10 * HOUR, 0.0),
        (12 * HOUR, 0.0),
    ]


def test_hourly_sparklines_use_the_hourly_buckets() -> None:
    assert hourly_granularity(MetricConfig()) == 3600
    assert max_hours(MetricConfig()) == 720
    five_minutes = MetricConfig(windows=WindowSet.parse("1h:60,1d:300"))
    assert hourly_granularity(five_minutes) == 300


def test_view_links_keep_the_other_choice_and_leave_defaults_out() -> None:
    view = View(plan="team", window="7d")
    assert view.href(plan="all") == "/?window=7d"
    assert view.href(window="24h") == "/?plan=team"
    assert View().href("/accounts/a") == "/accounts/a"
    assert View(plan="a&b").href() == "/?plan=a%26b"


def test_page_escapes_account_ids_and_reasons() -> None:
    board = data()
    board.risky = [
        {"account": "<script>x</script>", "score": 12.0, "band": "at_risk", "reasons": ["a&b"]}
    ]
    page = render(board, None, None, {"Events applied": 3}, {})
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page
    assert 'href="/accounts/%3Cscript%3Ex%3C%2Fscript%3E"' in page
    assert '<meta http-equiv="refresh"' in page and "http://" not in page and "https://" not in page


def test_at_risk_table_lists_only_at_risk_accounts_or_says_it_shows_the_lowest() -> None:
    board = data()
    row = {"score": 30.0, "band": "at_risk", "reasons": []}
    board.risky = [
        {"account": "a1", **row},
        {"account": "n1", **row, "score": 55.0, "band": "neutral"},
    ]
    page = render(board, None, None, {}, {})
    assert 'id="account-a1"' in page and 'id="account-n1"' not in page
    board.risky = board.risky[1:]
    page = render(board, None, None, {}, {})
    assert 'id="account-n1"' in page and "No account is at risk" in page


def test_dead_letters_are_explained_by_reason() -> None:
    page = render(
        data(), None, None, {"Dead-lettered": 10, "Events applied": 990}, {"currency": 10}
    )
    assert "1.0% of 1,000 events read" in page
    assert "not the reporting currency<" in page  # a few words
    assert "currency is not the reporting currency" in page  # in full on hover


def test_health_bands_bar_splits_its_width_by_share() -> None:
    from streams.board.charts import WIDTH, share_bar

    svg = share_bar(
        "Bands", [("Healthy", "h", 150.0), ("Neutral", "n", 50.0), ("At risk", "r", 0.0)]
    )
    widths = [float(w) for w in re.findall(r'width="([\d.]+)"', svg)]
    assert widths == [WIDTH * 0.75, WIDTH * 0.25, 0.0]
    assert "<title>Neutral: 50 (25%)</title>" in svg and "<title>Bands</title>" in svg
    assert "no data yet" in share_bar("Bands", [("Healthy", "h", 0.0)])
