"""The broker-latency benchmark's reading of stamps and its per-minute table."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.broker_latency import report, stamp_in


def test_the_stamp_is_read_from_the_raw_event_time() -> None:
    value = b'{"id":"e1","time":"2026-12-03T07:00:01.250Z","data":{}}'
    assert stamp_in(value) == datetime(2026, 12, 3, 7, 0, 1, 250_000, UTC).timestamp()


def test_each_minute_reports_its_own_fetches_and_the_broker_cpu_per_event() -> None:
    delays = [(10.0 + i, 0.1) for i in range(50)] + [(70.0 + i, 1.0 + i / 100) for i in range(100)]
    marks = [(0.0, 5.0), (60.0, 6.0), (180.0, 6.5)]
    rows = report(delays, marks)[2:]
    assert rows[0] == "| 1 | 50 | 0.10 | 0.10 | 20000.0 |"  # 1 s of CPU over 50 events
    assert rows[1] == "| 2 | 100 | 1.50 | 1.99 | 5000.0 |"
