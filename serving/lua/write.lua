-- Store one entry, keep its version keys alive at least as long, release the writer's lock.
-- KEYS: entry, lock, version keys... ARGV: entry bytes, PX, lock token ('' for none),
-- version TTL in seconds.
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[4])
for i = 3, #KEYS do
  local current = redis.call('TTL', KEYS[i])
  if current == -1 or (current >= 0 and current < ttl) then redis.call('EXPIRE', KEYS[i], ttl) end
end
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
