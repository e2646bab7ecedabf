-- plan_label.lua: the bounded label of each raw plan name.
-- KEYS[1]  cs:plan_names
-- ARGV[1]  most labels admitted; ARGV[2..]: raw plan names
-- Returns per name: itself once admitted, or OTHER when the set is full.
local out = {}
for i, plan in ipairs(ARGV) do
  if i > 1 then
    if redis.call('SISMEMBER', KEYS[1], plan) == 1 then out[#out + 1] = plan
    elseif redis.call('SCARD', KEYS[1]) < tonumber(ARGV[1]) then
      redis.call('SADD', KEYS[1], plan)
      out[#out + 1] = plan
    else out[#out + 1] = OTHER end
  end
end
return out
