"""Hand the allocator's free memory back to the system now and then (glibc only).

The worker's live memory rises and falls with the bursts the broker hands
over: a fetch response, its records and the batch built from them are
several MiB at once, freed a few milliseconds later. glibc keeps what it
freed inside its heap for reuse, and returns it to the system only from the
heap's top; a few small objects allocated above a burst pin the pages below
them, so the resident size can stay at a past burst's instead of following
what is alive. Two remedies: large blocks (fetch responses) get a mapping of their
own (:func:`map_large_allocations`), returned whole when freed, and
``malloc_trim(0)`` releases the free pages anywhere in the heap
(``MADV_DONTNEED``); called every :data:`TRIM_INTERVAL` seconds it takes
well under a millisecond. Elsewhere (musl, macOS) both do nothing.

The cycle collector is spared the objects that live as long as the worker
(:func:`freeze_startup_objects`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable
from typing import Any

TRIM_INTERVAL = 10.0
"""Seconds between trims of the allocator's free memory."""

MMAP_THRESHOLD = 256 * 1024
"""Allocations of at least this many bytes get their own mapping, unmapped when freed.

glibc starts at 128 KiB and raises the threshold (up to 32 MiB) each time such a
mapping is freed, so after a few fetch responses the next ones land in the heap
and leave holes there. Setting it fixes it where it is."""

M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number (malloc.h)."""


def _libc_function(name: str) -> Any | None:
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        return getattr(ctypes.CDLL(path), name)
    except (OSError, AttributeError):
        return None


def _malloc_trim() -> Any | None:
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim.argtypes = [ctypes.c_size_t]
        trim.restype = ctypes.c_int
    return trim


def map_large_allocations(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; True where it took effect."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


def freeze_startup_objects() -> int:
    """Move the objects alive now out of the cycle collector's reach; how many there are.

    A full collection walks every tracked object, and most of the worker's are its
    modules, classes and clients, alive until it exits: at 4,000 events/s its full
    collections took 33 ms each, 5 % of its CPU, and 3.7 ms once these were frozen
    (docs/benchmarks.md). Called once, when the worker is set up: a frozen object is
    never collected as part of a cycle, so garbage is collected first, and what
    batches allocate later is collected as before."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class Trimmer:
    """Calls ``malloc_trim(0)`` at most every ``interval`` seconds, where glibc has it."""

    def __init__(
        self, interval: float = TRIM_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval, self.clock = interval, clock
        self._trim = _malloc_trim()
        self._next = clock() + interval

    @property
    def available(self) -> bool:
        return self._trim is not None

    def maybe_trim(self) -> bool:
        """Trim if the interval passed; True when it did."""
        if self._trim is None or self.clock() < self._next:
            return False
        self._next = self.clock() + self.interval
        self._trim(0)
        return True
