-- Shared prelude, prepended to every realtime script by realtime/scripts.py, after the
-- constants IDLE (idle TTL of counters and gauges, 0 = none), HOURS (hour buckets kept per
-- counter, 0 = none), REFRESH (registry marker TTL), SLOTS (time slots per window) and the
-- sketch's LOG_GAMMA and MIN_INDEXABLE (realtime/sketch.py), and TOP_CAPACITY (items kept per
-- top-k time slot, realtime/series.py).
-- Redis 7 replicates script effects by default; on 5/6 this makes TIME-then-write legal.
if redis.replicate_commands then pcall(redis.replicate_commands) end

-- Redis TIME in whole seconds once read in this script call (see redis_now).
local now_seconds = nil

-- INCRBY (exact) when delta and the stored value are integers, INCRBYFLOAT otherwise.
local function incr(key, delta)
  local result = redis.pcall('INCRBY', key, delta)
  if type(result) == 'number' then return result end
  return redis.call('INCRBYFLOAT', key, delta)
end

local function hincr(key, field, delta)
  local result = redis.pcall('HINCRBY', key, field, delta)
  if type(result) == 'number' then return result end
  return redis.call('HINCRBYFLOAT', key, field, delta)
end

-- The sketch bucket of a value, as realtime.sketch.bucket_field computes it (batch.lua's
-- histogram writes; a single write gets it from the client). `+ 0` turns the -0 that math.ceil
-- gives just below magnitude 1 into 0: the field is p0 (or m0) as in Python, never p-0.
local function bucket_of(number)
  if number > MIN_INDEXABLE then return 'p' .. (math.ceil(math.log(number) / LOG_GAMMA) + 0) end
  if number < -MIN_INDEXABLE then return 'm' .. (math.ceil(math.log(-number) / LOG_GAMMA) + 0) end
  return 'z'
end

-- Redis TIME in whole seconds, read once per script call: the writes of a batch.lua call share
-- it (one TIME command instead of one per write) and so land in the same time slot and hour.
local function redis_now()
  if not now_seconds then now_seconds = tonumber(redis.call('TIME')[1]) end
  return now_seconds
end

-- Width in seconds of one time slot of a window (realtime.series.slot_seconds).
local function slot_of(window)
  return math.max(1, math.floor(window / SLOTS))
end

-- The keys of a windowed series' time slots that overlap (now - window, now].
local function window_slots(base, window)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local slot = slot_of(window)
  local keys = {}
  for index = math.floor((now - window) / slot), math.floor(now / slot) do
    keys[#keys + 1] = base .. ':' .. index
  end
  return keys
end

-- The key of a windowed series' current time slot (base:index, "now" from TIME) and when that
-- slot's key expires: one window after the slot ends.
local function current_slot(base, window)
  local slot = slot_of(window)
  local index = math.floor(redis_now() / slot)
  return base .. ':' .. index, (index + 1) * slot + window + 1
end

-- Once per REFRESH seconds per series (while its marker key lives): refresh the idle TTL of
-- `ttl_key` (if given) and return the time to register the series at; 0 otherwise.
local function refresh(base, ttl_key)
  if redis.call('SET', base .. ':m', '1', 'NX', 'EX', REFRESH) then
    if ttl_key and IDLE > 0 then redis.call('EXPIRE', ttl_key, IDLE) end
    return redis_now()
  end
  return 0
end

-- A time slot's first write: the slot key expires at `expires`; returns refresh's answer.
local function slot_started(base, key, expires)
  redis.call('EXPIREAT', key, expires)
  return refresh(base, nil)
end

-- Add delta to a counter's bucket for `hour`; when that bucket is new, drop the buckets
-- older than HOURS and refresh the TTLs. Returns true for a new bucket.
local function add_to_hour(key, hour, delta)
  local hk = key .. ':h'
  local value = hincr(hk, hour, delta)
  if tonumber(value) ~= tonumber(delta) then return false end
  local fields = redis.call('HKEYS', hk)
  for i = 1, #fields do
    if tonumber(fields[i]) <= hour - HOURS then redis.call('HDEL', hk, fields[i]) end
  end
  redis.call('EXPIRE', hk, HOURS * 3600)
  if IDLE > 0 then redis.call('EXPIRE', key, IDLE) end
  return true
end
