"""The worker hands freed heap memory back now and then, and bounds its fetches."""

from __future__ import annotations

import asyncio
import gc

from redis.asyncio import Redis

from streams import app, memory
from streams.app import FETCH_MAX_BYTES, PARTITION_FETCH_BYTES, Worker
from streams.config import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_trims_at_most_once_per_interval() -> None:
    calls: list[int] = []
    clock = FakeClock()
    trimmer = memory.Trimmer(10.0, clock)
    trimmer._trim = calls.append  # type: ignore[assignment]
    assert not trimmer.maybe_trim()
    clock.now += 10.0
    assert trimmer.maybe_trim()
    assert not trimmer.maybe_trim()
    clock.now += 9.9
    assert not trimmer.maybe_trim()
    clock.now += 0.2
    assert trimmer.maybe_trim()
    assert calls == [0, 0]


def test_without_malloc_trim_it_does_nothing() -> None:
    clock = FakeClock()
    trimmer = memory.Trimmer(1.0, clock)
    trimmer._trim = None
    clock.now += 5
    assert not trimmer.available
    assert not trimmer.maybe_trim()


def test_glibc_malloc_trim_is_callable_where_found() -> None:
    trim = memory._malloc_trim()
    if trim is not None:  # glibc; None on musl and macOS
        assert trim(0) in (0, 1)


def test_fetch_responses_are_bounded_yet_hold_the_largest_record() -> None:
    async def build() -> tuple[int, int]:
        worker = Worker(Settings.model_validate({}), "127.0.0.1:9", Redis())
        consumer = worker.consumer
        await worker.producer.stop()
        return consumer._fetch_max_bytes, consumer._max_partition_fetch_bytes

    fetch_max, per_partition = asyncio.run(build())
    assert (fetch_max, per_partition) == (FETCH_MAX_BYTES, PARTITION_FETCH_BYTES)
    assert app.DEAD_LETTER_MAX_BYTES < PARTITION_FETCH_BYTES <= FETCH_MAX_BYTES
    assert FETCH_MAX_BYTES < 52428800  # aiokafka's default: a burst of up to 50 MiB held at once


def test_the_mmap_threshold_is_fixed_where_glibc_has_mallopt() -> None:
    if memory._libc_function("mallopt") is None:  # musl, macOS
        assert not memory.map_large_allocations()
    else:
        assert memory.map_large_allocations()


def test_freezing_spares_the_collector_what_lives_now_and_still_collects_later_cycles() -> None:
    holder = [[] for _ in range(1000)]  # tracked containers alive across the freeze
    try:
        frozen = memory.freeze_startup_objects()
        assert frozen == gc.get_freeze_count() >= 1000
        walked = {id(o) for o in gc.get_objects()}
        assert id(holder) not in walked and id(holder[0]) not in walked

        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # garbage made after the freeze is still found
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
