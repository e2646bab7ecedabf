"""Event-time windows and buckets, exactly as the metric contract defines them.

Aggregates live in buckets of granularity ``g`` (seconds). An event at Unix
time ``ts`` lands in bucket ``floor(ts / g)``. At reading time ``t`` a window
of ``W`` seconds holds the ``W/g`` most recent buckets, the current partial
one included: ``floor(t/g) - W/g < k <= floor(t/g)``. Pure functions only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

DEFAULT_WINDOWS = "1h:60,1d:300,7d:3600,30d:3600"

_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``90s``, ``5m``, ``1h``, ``7d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use a number and one of s, m, h, d, w)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True, slots=True)
class Window:
    """One reporting window: its label, length and bucket granularity (seconds)."""

    name: str
    seconds: int
    granularity: int

    @property
    def buckets(self) -> int:
        return self.seconds // self.granularity

    def bucket_range(self, t: float) -> tuple[int, int]:
        """Inclusive range of bucket indexes in this window at time ``t``."""
        current = bucket_of(t, self.granularity)
        return current - self.buckets + 1, current


@dataclass(frozen=True)
class WindowSet:
    """The configured windows and everything derived from them."""

    windows: tuple[Window, ...]

    @classmethod
    def parse(cls, spec: str) -> WindowSet:
        """Build from ``name:granularity`` pairs, e.g. ``1h:60,1d:300``.

        A bare name (``1h``) takes the default granularity of the contract
        for that length, or one bucket per 1/60 of the window.
        """
        windows = tuple(_parse_window(part) for part in spec.split(",") if part.strip())
        if not windows:
            raise ValueError("at least one window is needed")
        names = [w.name for w in windows]
        if len(set(names)) != len(names):
            raise ValueError(f"window names repeat: {spec!r}")
        return cls(windows)

    @property
    def granularities(self) -> tuple[int, ...]:
        return tuple(sorted({w.granularity for w in self.windows}))

    @cached_property
    def longest(self) -> Window:
        """The window whose retention decides lateness (ties: coarser buckets); worked out
        once, as the fold asks for it per batch and per coarse bucket."""
        return max(self.windows, key=lambda w: (w.seconds, w.granularity))

    def retention(self, granularity: int) -> int:
        """Seconds a bucket of this granularity is kept: longest window using it + one bucket."""
        longest = max(w.seconds for w in self.windows if w.granularity == granularity)
        return longest + granularity

    def by_name(self, name: str) -> Window | None:
        return next((w for w in self.windows if w.name == name), None)

    def __iter__(self) -> Iterator[Window]:
        return iter(self.windows)


def _parse_window(part: str) -> Window:
    name, _, gran = part.strip().partition(":")
    seconds = parse_duration(name)
    granularity = parse_duration(gran) if gran else _default_granularity(seconds)
    if granularity <= 0 or seconds % granularity:
        raise ValueError(f"window {name} is not a whole number of {granularity}s buckets")
    return Window(name.strip(), seconds, granularity)


def _default_granularity(seconds: int) -> int:
    known = {3600: 60, 86400: 300, 604800: 3600, 2592000: 3600}
    return known.get(seconds, max(1, seconds // 60))


def bucket_of(ts: float, granularity: int) -> int:
    """Index of the bucket holding time ``ts``."""
    return math.floor(ts / granularity)


def in_window(ts: float, window: Window, t: float) -> bool:
    """Whether an event at ``ts`` counts in ``window`` read at time ``t``."""
    low, high = window.bucket_range(t)
    return low <= bucket_of(ts, window.granularity) <= high


def is_too_late(ts: float, windows: WindowSet, t: float) -> bool:
    """True when no retained bucket can hold ``ts`` any more.

    Retention is the longest window plus one bucket, so the oldest bucket
    still kept at ``t`` is ``floor(t/G) - W/G`` for the longest window.
    """
    longest = windows.longest
    oldest_kept = bucket_of(t, longest.granularity) - longest.buckets
    return bucket_of(ts, longest.granularity) < oldest_kept


def retention_cutoff(windows: WindowSet, t: float) -> float:
    """Earliest event time that still lands in a retained bucket at ``t``."""
    longest = windows.longest
    oldest_kept = bucket_of(t, longest.granularity) - longest.buckets
    return float(oldest_kept * longest.granularity)


def bucket_ttl(bucket: int, granularity: int, windows: WindowSet, t: float) -> int:
    """Seconds from ``t`` until a bucket leaves its longest window plus one bucket.

    Relative to ``t`` (wall clock or watermark) so backfills read with
    ``clock=watermark`` keep their buckets; at least one granularity.
    """
    expires_at = (bucket + 1) * granularity + windows.retention(granularity)
    return max(granularity, math.ceil(expires_at - t))
