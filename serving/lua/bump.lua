-- Invalidation: move each version key forward (INCR, or Redis TIME in microseconds when it
-- is missing) and make sure it outlives the entries that carry it.
-- KEYS: version keys. ARGV[1]: their TTL in seconds. Returns the new versions.
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
  out[i] = redis.call('GET', key)
end
return out
