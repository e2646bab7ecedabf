"""Rolling window sums: what lets a scrape read one hash per window, not every bucket.

Each partition keeps, per window, a hash ``cs:{tp}:w:<window>`` holding the
sum of its buckets from a cursor on (the cursor is the field ``c:<window>``
of the partition's meta hash). The apply script adds every counter delta to
its bucket *and* to each window of that granularity whose cursor it has not
passed; the apply and read scripts both move the cursor to the window's
first bucket at their reading time, subtracting the buckets that left (or
adding back buckets when a reader's clock is behind). Buckets dated after
the reading time (events from the near future) are subtracted at read time
only. A window whose cursor is missing, too far away, or whose oldest
counted bucket may have expired is rebuilt from its buckets, once.

So a scrape costs one ``HGETALL`` per window and partition plus the few
buckets that moved since the last write or read; every bucket is still
read at most once per call, and 7d and 30d never read the same hour twice.

:data:`WINDOW_LUA` holds the Lua functions both scripts share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from aggregators.scripts import source
from aggregators.windows import WindowSet

WINDOW_LUA = source("window")
"""The functions the apply and read scripts share (``aggregators/lua/window.lua``)."""

GRACE_BUCKETS = 2
"""A bucket lives this many granularities past its window (the cursor's slack)."""

TTL_CLOCK_SLACK = 3600.0
"""How far before its newest event a batch's TTL clock may be (see :func:`ttl_base`)."""


class WindowSpec(NamedTuple):
    """What the Lua ``advance`` (``lua/window.lua``) needs of a window at a time ``t``.
    Sent as a msgpack array in this order: Lua reads ``w[1]`` .. ``w[5]``."""

    name: str
    granularity: int
    low: int
    """The window's first bucket at ``t``."""
    buckets: int
    span: int
    """Seconds after which a bucket of the window may have expired."""


class ApplyWindow(NamedTuple):
    """A window as the apply script takes it (``lua/apply.lua``, ``w[1]`` .. ``w[7]``)."""

    name: str
    granularity: int
    low: int
    buckets: int
    span: int
    key: int
    """KEYS index of the window's sum hash."""
    sums: list[str]
    """The batch's ``field, amount, ...`` from the window's first bucket on."""


class ReadWindow(NamedTuple):
    """A window as the read script takes it (``lua/read.lua``, ``w[1]`` .. ``w[6]``)."""

    name: str
    granularity: int
    low: int
    buckets: int
    span: int
    high: int
    """The window's newest bucket at the reading time."""


def window_specs(windows: WindowSet, t: float) -> list[WindowSpec]:
    """Per window, what the Lua ``advance`` needs at ``t``."""
    return [
        WindowSpec(
            w.name, w.granularity, w.bucket_range(t)[0], w.buckets, w.seconds + w.granularity
        )
        for w in windows
    ]


def retention(windows: WindowSet, granularity: int) -> int:
    """Seconds a bucket outlives its own end: its longest window plus the cursor's slack."""
    longest = max(w.seconds for w in windows if w.granularity == granularity)
    return longest + GRACE_BUCKETS * granularity


def bucket_ttl(bucket: int, granularity: int, windows: WindowSet, t: float) -> int:
    """Seconds from ``t`` until the bucket may go; at least one granularity."""
    return bucket_ttls(windows, t)(bucket, granularity)


def bucket_ttls(windows: WindowSet, t: float) -> Callable[[int, int], int]:
    """:func:`bucket_ttl` at ``t`` for many buckets: each granularity's retention is
    worked out once (a backlog's batch writes hundreds of buckets)."""
    kept = {g: retention(windows, g) for g in windows.granularities}

    def ttl(bucket: int, granularity: int) -> int:
        expires_at = (bucket + 1) * granularity + kept[granularity]
        return max(granularity, math.ceil(expires_at - t))

    return ttl


def ttl_base(t: float, newest_event: float | None) -> float:
    """The time TTLs are counted from: ``t``, unless it is far behind the batch.

    With ``clock=watermark`` on an empty Redis the first batches see ``t = 0``;
    counting from there would keep their buckets for about 57 years. The batch's
    newest event (less an hour of slack) bounds it instead.
    """
    if newest_event is None:
        return t
    return max(t, newest_event - TTL_CLOCK_SLACK)
