-- window.lua: functions the apply and read scripts share (prepended to both).
-- Rolling window sums: cs:{tp}:w:<window> holds the sum of the window's buckets
-- from its cursor (meta field CURSOR .. <window>) on; NEWEST .. <g> is the newest
-- bucket of granularity g written. A window spec w (aggregators/rolling.py,
-- WindowSpec): {name, g, low (first bucket), n (buckets), span, [6]: KEYS index
-- (apply) or newest bucket at the reading time (read), [7]: sums (apply)}.
-- No KEYS or ARGV of its own.
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

-- Move window w's cursor to its first bucket at time t (w: name, g, low, n, span);
-- cursor: the stored cursor if the caller read it (false: none), nil to read it here.
local function advance(meta, wkey, prefix, w, t, maxk, cursor)
  local name, g, low, n, span = w[1], w[2], w[3], w[4], w[5]
  local field = CURSOR .. name
  if cursor == nil then cursor = redis.call('HGET', meta, field) end
  local c = tonumber(cursor)
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
  return tonumber(redis.call('HGET', meta, NEWEST .. g)) or -1
end
