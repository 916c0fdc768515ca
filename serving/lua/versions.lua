-- The current version of each key, creating missing ones. A created version is Redis TIME in
-- microseconds, so a re-created key never repeats a value an old entry could still carry.
-- KEYS: version keys. ARGV[1]: their TTL in seconds.
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v then
    redis.call('SET', key, now, 'EX', ttl)
    v = now
  end
  out[i] = v
end
return out
