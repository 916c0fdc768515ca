-- Invalidation: move each version key forward (INCR, or Redis TIME in microseconds when it
-- is missing) and make sure it outlives the entries that carry it. KEYS[1] is the namespace's
-- stamp, moved the same way by every call: a hit proven valid under an older stamp is proven
-- again (serving/cache.py).
-- KEYS: the stamp, then the version keys. ARGV[1]: their TTL in seconds. Returns the new
-- versions of the version keys.
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('INCR', key)
  else
    redis.call('SET', key, now)
  end
  local current = redis.call('TTL', key)
  if current == -1 or current < ttl then redis.call('EXPIRE', key, ttl) end
  if i > 1 then out[i - 1] = redis.call('GET', key) end
end
return out
