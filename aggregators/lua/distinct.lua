-- distinct.lua: one partition's last-seen sets per window start.
-- KEYS[1..n-1]  cs:{tp}:z:<name>; KEYS[n]: the guard (never read)
-- ARGV[1]  msgpack window starts, ascending
-- ARGV[2]  '1': the members from each start to the next; else the count from each start
-- Returns per set, per start: a count or a list of members.
local bounds, members = cmsgpack.unpack(ARGV[1]), ARGV[2] == '1'
local out = {}
for i = 1, #KEYS - 1 do
  local per = {}
  for j, low in ipairs(bounds) do
    if members then
      local high = bounds[j + 1] and ('(' .. bounds[j + 1]) or '+inf'
      per[j] = redis.call('ZRANGEBYSCORE', KEYS[i], low, high)
    else
      per[j] = redis.call('ZCOUNT', KEYS[i], low, '+inf')
    end
  end
  out[i] = per
end
return out
