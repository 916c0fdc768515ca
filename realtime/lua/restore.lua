-- Restore one backed-up counter or gauge after Redis lost it. KEYS[1] series key.
-- ARGV: kind ('counter' | 'gauge'), value, unit, then (hour index, increments) pairs for
-- counters.
-- A counter is restored at most once per Redis lifetime: its ':b' sentinel (set at backup)
-- tells that Redis still holds it; the backed-up value is added, so increments made since the
-- restart are kept. A gauge is restored only if no newer value was set.
-- Returns {1, registration time or 0} when restored, {0, 0} when Redis still had it.
local key = KEYS[1]
if ARGV[1] == 'gauge' then
  if redis.call('EXISTS', key) == 1 then return {0, 0} end
  if ARGV[3] ~= '' then
    redis.call('HSET', key, 'v', ARGV[2], 'u', ARGV[3])
  else
    redis.call('HSET', key, 'v', ARGV[2])
  end
  if IDLE > 0 then redis.call('EXPIRE', key, IDLE) end
  return {1, refresh(key, nil)}
end
if redis.call('EXISTS', key .. ':b') == 1 then return {0, 0} end
incr(key, ARGV[2])
if IDLE > 0 then redis.call('EXPIRE', key, IDLE) end
local hour_now = math.floor(redis_now() / 3600)
for i = 4, #ARGV, 2 do
  local hour = tonumber(ARGV[i])
  if HOURS > 0 and hour > hour_now - HOURS then add_to_hour(key, hour, ARGV[i + 1]) end
end
if IDLE > 0 then
  redis.call('SET', key .. ':b', '1', 'EX', IDLE)
else
  redis.call('SET', key .. ':b', '1')
end
return {1, refresh(key, nil)}
