-- Claim the Prometheus sample names of one metric (realtime/names.py).
-- KEYS[1]: the names hash. ARGV[1]: the owner ("kind:name"); ARGV[2]: the hash's TTL in
-- seconds (0: none); ARGV[3..]: the sample names. Returns the other owner of a name already
-- taken, else nil (and every name is now this owner's).
for i = 3, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then return owner end
end
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return nil
