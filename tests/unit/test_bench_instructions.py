"""The instruction counter reads callgrind's own total, whichever line carries it."""

import pytest

from bench.instructions import _total


def test_total_reads_the_summary_line() -> None:
    report = "version: 1\ncmd: python\nevents: Ir\nsummary: 1949342128\nfn=(1) main\n"
    assert _total(report) == 1_949_342_128


def test_total_reads_a_totals_line_when_there_is_no_summary() -> None:
    assert _total("events: Ir\nfn=(1) x\n0 5\ntotals: 77\n") == 77


def test_no_total_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="no totals"):
        _total("events: Ir\n")
