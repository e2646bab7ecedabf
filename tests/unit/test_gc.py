"""The worker's collector settings (``streams.app.steady_gc``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.app import GC_YOUNG_THRESHOLD, steady_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_steady_gc_freezes_start_up_and_collects_the_young_less_often(restored_gc: None) -> None:
    _young, older, oldest = gc.get_threshold()
    steady_gc()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, older, oldest)
    assert gc.get_freeze_count() > 1000, "start-up's objects are out of the collector's sight"


def test_cycles_made_after_it_are_still_collected(restored_gc: None) -> None:
    steady_gc()

    class Node:
        other: object = None

    collected: list[str] = []
    a, b = Node(), Node()
    a.other, b.other = b, a
    gc.callbacks.append(lambda phase, info: collected.append(phase))
    try:
        del a, b
        assert gc.collect(0) >= 2
    finally:
        gc.callbacks.pop()
    assert "stop" in collected
