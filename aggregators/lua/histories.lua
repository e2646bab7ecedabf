-- histories.lua: the plan histories of a batch's accounts, in one call.
-- KEYS     cs:{<billing topic>:p}:ph:<account> of each account (one slot: the billing
--          partition's)
-- ARGV     none
-- Returns, per key in order, {member, score, member, score, ...} oldest first.
local out = {}
for i = 1, #KEYS do out[i] = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES') end
return out
