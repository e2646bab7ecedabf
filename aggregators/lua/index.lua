-- index.lua: the health index (scores, last, sum, versions, usage).
-- KEYS     cs:{health}:scores, :last, :sum, :version, :usage_plan, :usage; then, to
--          forget the accounts from a partition's due list, cs:{tp}:mirror_due; each
--          row's mirror cs:acct:{<account>} is read too, undeclared (outside Cluster
--          only, where a script may read any key: other slots)
-- ARGV[1]  cutoff: accounts with no event since it are dropped ('' for none)
-- ARGV[2]  msgpack {account, score, last, version, paying, plan, used} per account
-- ARGV[3]  family whose facts were mirrored; ARGV[4]: the due entries' offset up to
--          which they are forgotten; ARGV[5]: msgpack facts written, per row
--          (all three absent: no due list)
-- Returns how many accounts were dropped.
-- The sum is read and written with GET/SET, never INCRBYFLOAT: called from Lua
-- after any command with more than 4 arguments, Redis 6.2's INCRBYFLOAT (which
-- rewrites itself to SET ... KEEPTTL) shrinks the script engine's shared
-- argument array and the next long command overruns it (heap corruption).
local scores, last, total, versions, plans, usage = unpack(KEYS)
local sum = tonumber(redis.call('GET', total)) or 0
local rows = cmsgpack.unpack(ARGV[2])
local function column(list, a, b)
  local out = {}
  for i, row in ipairs(list) do
    if b then out[2 * i - 1], out[2 * i] = row[a], row[b] else out[i] = row[a] end
  end
  return out
end
local fresh = {}
if #rows > 0 then
  local indexed = redis.call('HMGET', versions, unpack(column(rows, 1)))
  for i, row in ipairs(rows) do
    if tonumber(row[4]) > tonumber(indexed[i] or '0') then fresh[#fresh + 1] = row end
  end
end
-- an account leaves the usage index when not paying and active, or when its plan changed
local function unlist(accounts, listed)
  local by_plan = {}
  for i, account in ipairs(accounts) do
    local plan = listed[i]
    if plan then
      by_plan[plan] = by_plan[plan] or {}
      table.insert(by_plan[plan], account)
    end
  end
  for plan, members in pairs(by_plan) do
    redis.call('ZREM', usage .. ':' .. plan, unpack(members))
    redis.call('HDEL', plans, unpack(members))
  end
  if #accounts > 0 then redis.call('ZREM', usage, unpack(accounts)) end
end
if #fresh > 0 then
  local accounts = column(fresh, 1)
  local olds = redis.call('ZMSCORE', scores, unpack(accounts))
  redis.call('HSET', versions, unpack(column(fresh, 1, 4)))
  redis.call('ZADD', scores, unpack(column(fresh, 2, 1)))
  for i, row in ipairs(fresh) do sum = sum + row[2] - (tonumber(olds[i]) or 0) end
  redis.call('ZADD', last, 'GT', unpack(column(fresh, 3, 1)))
  local listed = redis.call('HMGET', plans, unpack(accounts))
  local leaving, was, paying = {}, {}, {}
  for i, row in ipairs(fresh) do
    local stays = row[5] and row[7] > 0
    if not stays or listed[i] ~= row[6] then
      table.insert(leaving, row[1])
      was[#leaving] = listed[i]
    end
    if stays then table.insert(paying, row) end
  end
  unlist(leaving, was)
  if #paying > 0 then
    redis.call('ZADD', usage, unpack(column(paying, 7, 1)))
    local by_plan = {}
    for _, row in ipairs(paying) do
      by_plan[row[6]] = by_plan[row[6]] or {}
      table.insert(by_plan[row[6]], row)
    end
    for plan, members in pairs(by_plan) do
      redis.call('ZADD', usage .. ':' .. plan, unpack(column(members, 7, 1)))
    end
    redis.call('HSET', plans, unpack(column(paying, 1, 6)))
  end
end
-- forget a due account only where this server's mirror holds the family's facts the
-- worker wrote (after a failover the promoted replica may hold the batch but not its
-- mirror: it stays due there); the index above is this script's own write
if ARGV[3] and #rows > 0 then
  local due, family, up_to = KEYS[7], ARGV[3], tonumber(ARGV[4])
  local written = cmsgpack.unpack(ARGV[5])
  local listed = redis.call('ZMSCORE', due, unpack(column(rows, 1)))
  local done = {}
  for i, row in ipairs(rows) do
    local at = tonumber(listed[i])
    local mirror = MIRROR_PREFIX .. row[1] .. '}'
    if at and at <= up_to and redis.call('HGET', mirror, family) == written[i] then
      done[#done + 1] = row[1]
    end
  end
  if #done > 0 then redis.call('ZREM', due, unpack(done)) end
end
local stale = {}
if ARGV[1] ~= '' then
  stale = redis.call('ZRANGEBYSCORE', last, '-inf', '(' .. ARGV[1], 'LIMIT', 0, 500)
  for _, account in ipairs(stale) do
    local old = redis.call('ZSCORE', scores, account)
    if old then
      sum = sum - tonumber(old)
      redis.call('ZREM', scores, account)
    end
    redis.call('ZREM', last, account)
    redis.call('HDEL', versions, account)
    unlist({account}, redis.call('HMGET', plans, account))
  end
end
redis.call('SET', total, string.format('%.17g', sum))
return #stale
