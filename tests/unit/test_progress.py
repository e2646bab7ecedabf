"""Catch-up progress is logged while behind, and only then."""

from __future__ import annotations

import logging

import pytest

from streams import app
from streams.app import Progress


def _report_after(progress: Progress, events: int, lag: dict[str, int]) -> None:
    progress.count(events)
    progress._since -= app.PROGRESS_INTERVAL  # as if the interval had passed
    progress.report(lag)


def test_a_backlog_is_reported_with_rate_lag_and_eta(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cspulse.app")
    _report_after(Progress(), events=50_000, lag={"cs.logins": 40_000, "cs.billing": 0})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("catching up: ") and "lag cs.logins 40000," in line
    assert "cs.billing" not in line  # topics with no lag are left out
    rate = float(line.split(": ")[1].split(" ")[0])
    assert 9_000 < rate <= 10_000  # 50,000 events over a little more than 5 s
    assert line.endswith(f"ETA {40_000 / rate:.0f}s")


def test_live_traffic_with_a_few_events_in_flight_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cspulse.app")
    _report_after(Progress(), events=50, lag={"cs.logins": 4})
    _report_after(Progress(), events=50, lag={})
    assert caplog.records == []


def test_a_stalled_worker_with_lag_says_the_eta_is_unknown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cspulse.app")
    _report_after(Progress(), events=0, lag={"cs.tickets": 7})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "catching up: 0 events/s, lag cs.tickets 7, ETA unknown"
