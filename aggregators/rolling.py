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
from typing import Any

from aggregators.windows import WindowSet

WINDOW_LUA = """
local function bucket_sums(prefix, g, first, last, acc, sign)
  local head = prefix .. g .. ':'
  for k = first, last do
    local kv = redis.call('HGETALL', head .. k)
    for j = 1, #kv, 2 do
      local f = kv[j]
      acc[f] = (acc[f] or 0) + sign * tonumber(kv[j + 1])
    end
  end
  return acc
end

local function rebuild(wkey, prefix, g, first, last)
  redis.call('DEL', wkey)
  for f, v in pairs(bucket_sums(prefix, g, first, last, {}, 1)) do
    if math.abs(v) >= 1e-6 then redis.call('HSET', wkey, f, string.format('%.17g', v)) end
  end
end

local function shift(wkey, prefix, g, first, last, sign)
  for f, v in pairs(bucket_sums(prefix, g, first, last, {}, sign)) do
    if v ~= 0 then
      local now = tonumber(redis.call('HINCRBYFLOAT', wkey, f, string.format('%.17g', v)))
      if math.abs(now) < 1e-6 then redis.call('HDEL', wkey, f) end
    end
  end
end

-- Move window w's cursor to its first bucket at time t (w: name, g, low, n, span).
local function advance(meta, wkey, prefix, w, t, maxk)
  local name, g, low, n, span = w[1], w[2], w[3], w[4], w[5]
  local field = 'c:' .. name
  local c = tonumber(redis.call('HGET', meta, field))
  if c == low then return end
  local stale = c == nil or c < low - n or c > low + n or (c < low and (c + 1) * g + span <= t)
  if stale then
    -- up to the newest bucket ever written (none past it exists), at most 2n buckets
    rebuild(wkey, prefix, g, low, math.min(maxk, low + 2 * n))
  elseif c < low then
    shift(wkey, prefix, g, c, low - 1, -1)
  else
    shift(wkey, prefix, g, low, c - 1, 1)
  end
  redis.call('HSET', meta, field, low)
end

-- Index of the newest bucket of granularity g ever written (-1: none), kept by the apply script.
local function max_bucket(meta, g)
  return tonumber(redis.call('HGET', meta, 'k:' .. g)) or -1
end
"""

GRACE_BUCKETS = 2
"""A bucket lives this many granularities past its window (the cursor's slack)."""

TTL_CLOCK_SLACK = 3600.0
"""How far before its newest event a batch's TTL clock may be (see :func:`ttl_base`)."""


def window_specs(windows: WindowSet, t: float) -> list[list[Any]]:
    """Per window, what the Lua ``advance`` needs: name, granularity, first bucket,
    bucket count, and the span after which a bucket may have expired."""
    return [
        [w.name, w.granularity, w.bucket_range(t)[0], w.buckets, w.seconds + w.granularity]
        for w in windows
    ]


def retention(windows: WindowSet, granularity: int) -> int:
    """Seconds a bucket outlives its own end: its longest window plus the cursor's slack."""
    longest = max(w.seconds for w in windows if w.granularity == granularity)
    return longest + GRACE_BUCKETS * granularity


def bucket_ttl(bucket: int, granularity: int, windows: WindowSet, t: float) -> int:
    """Seconds from ``t`` until the bucket may go; at least one granularity."""
    expires_at = (bucket + 1) * granularity + retention(windows, granularity)
    return max(granularity, math.ceil(expires_at - t))


def ttl_base(t: float, newest_event: float | None) -> float:
    """The time TTLs are counted from: ``t``, unless it is far behind the batch.

    With ``clock=watermark`` on an empty Redis the first batches see ``t = 0``;
    counting from there would keep their buckets for about 57 years. The batch's
    newest event (less an hour of slack) bounds it instead.
    """
    if newest_event is None:
        return t
    return max(t, newest_event - TTL_CLOCK_SLACK)
