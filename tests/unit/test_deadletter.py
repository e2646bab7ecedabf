"""Pure parts of ``cspulse deadletter``: filters, one replay per source message, output."""

from __future__ import annotations

import pytest
import typer

from aggregators.status import PartitionStatus
from streams.deadletter import (
    Letter,
    distinct_letters,
    preview,
    selected,
    since_time,
    table,
)

NOW = 1_795_392_000.0


def letter(offset: int, reason: str, written: float, source_offset: int = 0) -> Letter:
    return Letter(
        0, offset, written, b"k", b"{}", "cs.tickets", 1, source_offset, reason, "", False
    )


def test_since_takes_a_duration_or_an_rfc3339_time() -> None:
    assert since_time("2h", NOW) == NOW - 7200
    assert since_time("2026-11-23T00:00:00Z", NOW) == NOW
    assert since_time("2026-11-23T02:00:00+02:00", NOW) == NOW
    assert since_time(None, NOW) is None
    with pytest.raises(typer.BadParameter, match="neither a duration"):
        since_time("yesterday", NOW)
    with pytest.raises(typer.BadParameter, match="offset"):
        since_time("2026-11-23T00:00:00", NOW)


def test_filters_by_reason_and_time() -> None:
    letters = [letter(0, "currency", NOW - 10), letter(1, "not_json", NOW - 5000)]
    assert [x.offset for x in selected(letters, "currency", None)] == [0]
    assert [x.offset for x in selected(letters, None, NOW - 60)] == [0]
    assert selected(letters, "bad_time", None) == []


def test_a_message_dead_lettered_twice_is_replayed_once() -> None:
    twice = [letter(0, "processing_error", NOW, 7), letter(1, "processing_error", NOW, 7)]
    assert [x.offset for x in distinct_letters([*twice, letter(2, "currency", NOW, 8)])] == [0, 2]


def test_preview_and_table() -> None:
    assert preview(b'{"a":\n1}', 4) == '{"a"...'
    assert preview(b"\xff\x07ok", 10) == "\ufffd.ok"  # undecodable, then a control byte
    out = table(["a", "bb", "c"], [["xxx", "y", "z z"]])
    assert out.splitlines() == ["a    bb  c", "xxx  y   z z"]


def test_lag_counts_messages_after_the_applied_offset() -> None:
    assert PartitionStatus("t", 0, 9, 10, None, None).lag == 0
    assert PartitionStatus("t", 0, 4, 10, None, None).lag == 5
    assert PartitionStatus("t", 0, None, 3, None, None).lag == 3
