-- apply.lua (after window.lua): one batch of one partition, atomically.
-- KEYS[1]  cs:{tp}:meta; KEYS[2..]: every other key the ops and windows name
-- ARGV[1]  applied offset the batch was planned on (the fence); {0, current} if moved
-- ARGV[2]  the batch's last offset: the new applied offset
-- ARGV[3]  msgpack ops {code, KEYS index, ...}: b (bucket: g, index, ttl, field,
--          amount...), hf, zg, set, del, za, zm, zr, zt, pt, zs, zu
-- ARGV[4]  newest event time of the batch ('' for none): raises MAX_TS
-- ARGV[5]  msgpack window specs (w[6]: KEYS index of the window's sum, w[7]:
--          the batch's sums {field, amount, ...} from the cursor on)
-- ARGV[6]  bucket key prefix; ARGV[7]: the batch's time t
-- Returns {1, new offset}, or {0, stored offset} when the fence moved.
local meta = KEYS[1]
local windows, ops = cmsgpack.unpack(ARGV[5]), cmsgpack.unpack(ARGV[3])
-- every meta field the batch reads, in one HMGET (a redis.call costs the script about
-- as much as a small command): the offset, the newest event time, each window's cursor,
-- the newest bucket of each granularity written to; none is written before it is read
local names, at = {OFFSET, MAX_TS}, {[OFFSET] = 1, [MAX_TS] = 2}
local function want(field)
  if not at[field] then
    names[#names + 1] = field
    at[field] = #names
  end
end
for _, w in ipairs(windows) do
  want(CURSOR .. w[1])
  want(NEWEST .. w[2])
end
for i = 1, #ops do
  if ops[i][1] == 'b' then want(NEWEST .. ops[i][3]) end
end
local held = redis.call('HMGET', meta, unpack(names))
local function newest_held(g) return tonumber(held[at[NEWEST .. g]]) or -1 end
local cur = held[1]
if not cur then cur = '-1' end
if cur ~= ARGV[1] then return {0, cur} end
local prefix, t = ARGV[6], tonumber(ARGV[7])
for _, w in ipairs(windows) do
  -- move the window's cursor, then add this batch's sum of its buckets from the cursor on
  local wkey = KEYS[w[6]]
  advance(meta, wkey, prefix, w, t, newest_held(w[2]), held[at[CURSOR .. w[1]]])
  local sums = w[7]
  for j = 1, #sums, 2 do redis.call('HINCRBYFLOAT', wkey, sums[j], sums[j + 1]) end
end
local newest = {}
-- longer than zset-max-listpack-value, so the set becomes a skiplist; the bytes of 72
-- soft hyphens (U+00AD), as this member has always been: never an id in practice
local LONG = string.rep('\194\173', 72)
for i = 1, #ops do
  local op = ops[i]
  local c, k = op[1], KEYS[op[2]]
  if c == 'b' then
    -- bucket (g, index): add to it (its windows got their sums above); a new one is
    -- written whole, as adding to nothing is setting
    local index = op[4]
    if index > (newest[op[3]] or -1) then newest[op[3]] = index end
    if #op > 5 and #op < 1000 and redis.call('EXISTS', k) == 0 then
      redis.call('HSET', k, unpack(op, 6))
    else
      for j = 6, #op, 2 do redis.call('HINCRBYFLOAT', k, op[j], op[j + 1]) end
    end
    redis.call('EXPIRE', k, op[5])
  elseif c == 'hf' then redis.call('HINCRBYFLOAT', k, op[3], op[4])
  elseif c == 'zg' then redis.call('ZADD', k, 'GT', unpack(op, 3))
  elseif c == 'set' then
    if op[4] == '0' then redis.call('SET', k, op[3])
    else redis.call('SET', k, op[3], 'EX', op[4]) end
  elseif c == 'del' then redis.call('DEL', k)
  elseif c == 'za' then redis.call('ZADD', k, op[3], op[4])
  elseif c == 'zm' then redis.call('ZADD', k, unpack(op, 3))
  elseif c == 'zr' then redis.call('ZREM', k, op[3])
  elseif c == 'zt' then redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. op[3])
  elseif c == 'pt' then
    -- plan history: of the entries before the cutoff keep the newest (the plan in force)
    local n = redis.call('ZCOUNT', k, '-inf', '(' .. op[3])
    if n > 1 then redis.call('ZREMRANGEBYRANK', k, 0, n - 2) end
  elseif c == 'zs' then redis.call('ZADD', k, 0, LONG)
  elseif c == 'zu' then redis.call('ZREM', k, LONG)
  end
end
local writes = {OFFSET, ARGV[2]}
for g, index in pairs(newest) do
  if index > newest_held(g) then
    writes[#writes + 1] = NEWEST .. g
    writes[#writes + 1] = string.format('%d', index)
  end
end
if ARGV[4] ~= '' then
  local m = held[2]
  if (not m) or tonumber(m) < tonumber(ARGV[4]) then
    writes[#writes + 1] = MAX_TS
    writes[#writes + 1] = ARGV[4]
  end
end
redis.call('HSET', meta, unpack(writes))
return {1, ARGV[2]}
