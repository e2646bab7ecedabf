-- mirror.lua (after a generated header: local fields = {VERSION_FIELD, families...,
-- KEEP_FIELD .. family...}; local families = <count>): one family's facts into
-- each account's health mirror.
-- KEYS[i]  cs:acct:{<account>}
-- ARGV[1]  family name; ARGV[2]: retention in seconds
-- ARGV[3]  msgpack {facts, keep} per key
-- Returns per key {version, facts of each family in FAMILY_NAMES order (nil: none)}.
local family, retention = ARGV[1], ARGV[2]
local slot = nil
for j = 1, families do
  if fields[1 + j] == family then slot = j end
end
local mirrors = {}
for i, write in ipairs(cmsgpack.unpack(ARGV[3])) do
  local k, facts, keep = KEYS[i], write[1], write[2]
  local held = redis.call('HMGET', k, unpack(fields))
  local version = (tonumber(held[1]) or 0) + 1
  if version == 1 then
    local now = redis.call('TIME')
    version = now[1] * 1000000 + now[2]
  end
  version = string.format('%.0f', version)
  if keep then
    redis.call('HSET', k, VERSION_FIELD, version, family, facts, KEEP_FIELD .. family, '1')
  else
    redis.call('HSET', k, VERSION_FIELD, version, family, facts)
    if (not slot) or held[1 + families + slot] then redis.call('HDEL', k, KEEP_FIELD .. family) end
  end
  local persist = false
  for j = 1, families do
    local flag = held[1 + families + j]
    if j == slot then flag = keep end
    if flag then persist = true end
  end
  if persist then redis.call('PERSIST', k) else redis.call('EXPIRE', k, retention) end
  local mirror = {version}
  for j = 1, families do mirror[1 + j] = held[1 + j] end
  if slot then mirror[1 + slot] = facts end
  mirrors[i] = mirror
end
return mirrors
