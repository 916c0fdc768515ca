-- Counts of the slots of a rate that overlap the window (now - W, now].
-- KEYS[1] series base key. ARGV[1] window seconds.
-- Returns {now seconds, now microseconds, first slot index, count1, count2, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local slot = slot_of(window)
local first = math.floor((now - window) / slot)
local out = {tonumber(t[1]), tonumber(t[2]), first}
for index = first, math.floor(now / slot) do
  local value = redis.call('GET', KEYS[1] .. ':' .. index)
  out[#out + 1] = value and tonumber(value) or 0
end
return out
