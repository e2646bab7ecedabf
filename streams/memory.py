"""Hand the allocator's free memory back to the system now and then (glibc only).

The worker's live memory rises and falls with the bursts the broker hands
over: a fetch response, its records and the batch built from them are
several MiB at once, freed a few milliseconds later. glibc keeps what it
freed inside its heap for reuse, and returns it to the system only from the
heap's top; a few small objects allocated above a burst pin the pages below
them, so the resident size can stay at a past burst's instead of following
what is alive. ``malloc_trim(0)`` releases the free pages anywhere in the heap
(``MADV_DONTNEED``); called every :data:`TRIM_INTERVAL` seconds it takes
well under a millisecond. Elsewhere (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger("cspulse.memory")

TRIM_INTERVAL = 10.0
"""Seconds between trims of the allocator's free memory."""


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


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
