-- The writes as functions, shared by the one-write scripts and batch.lua.
-- Counters reply with the new total, or {total, registration time} when the series must be
-- (re-)registered; the others with 0 or the registration time.

-- Counter: INCRBY the total, HINCRBY the current hour bucket (kept HOURS hours for
-- reconciliation). TTLs are refreshed and the series re-registered when a new hour bucket
-- starts (without hour buckets: once per REFRESH).
local function counter_incr(key, delta)
  local total = incr(key, delta)
  if IDLE > 0 and tonumber(total) == tonumber(delta) then redis.call('EXPIRE', key, IDLE) end
  local registered
  if HOURS > 0 then
    local now = redis_now()
    if add_to_hour(key, math.floor(now / 3600), delta) then registered = now end
  else
    registered = refresh(key, key)
  end
  if registered and registered > 0 then return {total, registered} end
  return total
end

-- Gauge: a hash with v (value) and u (unit; '' keeps the stored one). The idle TTL is set on
-- creation and refreshed once per REFRESH.
local function gauge_set(key, value, unit)
  local created
  if unit ~= '' then
    created = redis.call('HSET', key, 'v', value, 'u', unit)
  else
    created = redis.call('HSET', key, 'v', value)
  end
  if created > 0 and IDLE > 0 then redis.call('EXPIRE', key, IDLE) end
  return refresh(key, key)
end

-- Histogram: one hash per time slot (base:index) with s (sum), lo/hi (exact min/max) and the
-- sketch bucket counts (their sum is the count); it expires one window after the slot ends.
-- `bucket` is the value's sketch field (bucket_of; the client computes it for single writes).
-- One HMGET reads what the write changes and one HSET stores it: two commands instead of
-- HINCRBYFLOAT + HINCRBY (+ HSET), and the sum is a double added in the order the writes
-- arrive, as plain Python would add them. It goes to HSET as a Lua number, which Redis prints
-- exactly (17 significant digits, or the shortest text that reads back the same).
local function histogram_add(base, value, window, bucket)
  local key, expires = current_slot(base, tonumber(window))
  local number = tonumber(value)
  local stored = redis.call('HMGET', key, 'lo', 'hi', 's', bucket)
  if not stored[1] then
    redis.call('HSET', key, 'lo', value, 'hi', value, 's', value, bucket, 1)
    return slot_started(base, key, expires)
  end
  local sum = tonumber(stored[3]) + number
  local count = (tonumber(stored[4]) or 0) + 1
  if number < tonumber(stored[1]) then
    redis.call('HSET', key, 's', sum, bucket, count, 'lo', value)
  elseif number > tonumber(stored[2]) then
    redis.call('HSET', key, 's', sum, bucket, count, 'hi', value)
  else
    redis.call('HSET', key, 's', sum, bucket, count)
  end
  return 0
end

-- Rate: one counter per time slot (base:index); it expires one window after the slot ends.
local function rate_track(base, count, window)
  local key, expires = current_slot(base, tonumber(window))
  if redis.call('INCRBY', key, count) == tonumber(count) then
    return slot_started(base, key, expires)
  end
  return 0
end

-- Unique: one HyperLogLog per time slot (base:index); it expires one window after the slot ends.
local function unique_add(base, member, window)
  local key, expires = current_slot(base, tonumber(window))
  local fresh = redis.call('EXISTS', key) == 0
  redis.call('PFADD', key, member)
  if fresh then return slot_started(base, key, expires) end
  return 0
end

-- Top-k: one sorted set per time slot (base:index), item -> count, holding at most
-- TOP_CAPACITY items (Space-Saving): a new item takes the place of the least counted one and
-- inherits its count, so counts are never under and an item is over by at most that count.
local function top_add(base, item, window)
  local key, expires = current_slot(base, tonumber(window))
  if redis.call('ZADD', key, 'XX', 'INCR', 1, item) then return 0 end
  local size = redis.call('ZCARD', key)
  if size < TOP_CAPACITY then
    redis.call('ZADD', key, 1, item)
    if size == 0 then return slot_started(base, key, expires) end
    return 0
  end
  local least = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  redis.call('ZREM', key, least[1])
  redis.call('ZADD', key, tonumber(least[2]) + 1, item)
  return 0
end

-- Histogram, merged in the client (realtime/aggregation.py): `summary` is
-- 'sum|lo|hi|field=count,field=count...', the sketch of many observations, added to the
-- current slot as histogram_add would add them one by one.
local function histogram_merge(base, summary, window)
  local key, expires = current_slot(base, tonumber(window))
  local sum, lo, hi, buckets = string.match(summary, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  local stored = redis.call('HMGET', key, 'lo', 'hi', 's')
  local fresh = not stored[1]
  if fresh then
    redis.call('HSET', key, 'lo', lo, 'hi', hi, 's', sum)
  else
    local fields = {'s', string.format('%.17g', tonumber(stored[3]) + tonumber(sum))}
    if tonumber(lo) < tonumber(stored[1]) then
      fields[#fields + 1] = 'lo'
      fields[#fields + 1] = lo
    end
    if tonumber(hi) > tonumber(stored[2]) then
      fields[#fields + 1] = 'hi'
      fields[#fields + 1] = hi
    end
    redis.call('HSET', key, unpack(fields))
  end
  for name, count in string.gmatch(buckets, '([^=,]+)=(%d+)') do
    redis.call('HINCRBY', key, name, count)
  end
  if fresh then return slot_started(base, key, expires) end
  return 0
end
