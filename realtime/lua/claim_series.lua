-- Claim the Prometheus sample names of one metric (realtime/names.py) and admit one of its
-- label sets under the metric's cardinality limit (realtime/cardinality.py).
-- KEYS[1]: the names hash; the metric's label sets are the set KEYS[1]:l:<owner> (same hash
-- tag). ARGV[1]: the owner ("kind:name"); ARGV[2]: the TTL of both in seconds (0: none);
-- ARGV[3]: the limit (0: none); ARGV[4]: the label text; ARGV[5..]: the sample names.
-- Returns the other owner of a name already taken (nothing claimed or admitted), else 0 when
-- the label set is admitted and 1 when the metric is at its limit (names claimed, label set
-- not admitted: its writes go to the overflow series).
for i = 5, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then return owner end
end
for i = 5, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
local ttl, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
if limit == 0 then return 0 end
local sets = KEYS[1] .. ':l:' .. ARGV[1]
local admitted = 0
if redis.call('SISMEMBER', sets, ARGV[4]) == 0 then
  if redis.call('SCARD', sets) >= limit then
    admitted = 1
  else
    redis.call('SADD', sets, ARGV[4])
  end
end
if ttl > 0 then redis.call('EXPIRE', sets, ttl) end
return admitted
