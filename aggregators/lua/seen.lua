-- seen.lua: which of a batch's id digests the dedup index holds.
-- KEYS[1]  cs:{tp}:seen
-- ARGV[1]  msgpack list of digests
-- Returns one string of '0' and '1', a character per digest.
local digests = cmsgpack.unpack(ARGV[1])
local hits = {}
for i = 1, #digests, 500 do
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(digests, i, math.min(i + 499, #digests)))
  for j = 1, #scores do hits[#hits + 1] = scores[j] and '1' or '0' end
end
return table.concat(hits)
