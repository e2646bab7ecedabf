-- read.lua (after window.lua): each window's rolling sum of one partition at time t.
-- KEYS[1]  cs:{tp}:meta; KEYS[1 + i]: the sum hash of window i; last: the guard
-- ARGV[1]  bucket key prefix; ARGV[2]: the reading time t
-- ARGV[3]  msgpack window specs (w[6]: the newest bucket at t)
-- Returns per window a flat {field, sum, ...}. Writes only the window cursors.
local meta, prefix, t = KEYS[1], ARGV[1], tonumber(ARGV[2])
local out = {}
for i, w in ipairs(cmsgpack.unpack(ARGV[3])) do
  local wkey, g, low, n, high = KEYS[i + 1], w[2], w[3], w[4], w[6]
  local maxk = max_bucket(meta, g)
  local sums = {}
  if maxk > high + n then
    bucket_sums(prefix, g, low, high, sums, 1)
  else
    advance(meta, wkey, prefix, w, t, maxk)
    local kv = redis.call('HGETALL', wkey)
    for j = 1, #kv, 2 do sums[kv[j]] = tonumber(kv[j + 1]) end
    if maxk > high then bucket_sums(prefix, g, high + 1, maxk, sums, -1) end
  end
  local flat = {}
  for f, v in pairs(sums) do
    flat[#flat + 1] = f
    flat[#flat + 1] = string.format('%.17g', v)
  end
  out[i] = flat
end
return out
