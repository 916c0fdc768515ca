-- Merge the slots of a histogram that overlap the window (now - W, now].
-- KEYS[1] series base key. ARGV[1] window seconds.
-- Returns {count, sum, min, max, field1, count1, field2, count2, ...} (min/max false if empty).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local slot = slot_of(window)
local count, sum, lo, hi = 0, 0, nil, nil
local lo_text, hi_text = false, false
local buckets = {}
for index = math.floor((now - window) / slot), math.floor(now / slot) do
  local fields = redis.call('HGETALL', KEYS[1] .. ':' .. index)
  for i = 1, #fields, 2 do
    local name, value = fields[i], fields[i + 1]
    if name == 's' then
      sum = sum + tonumber(value)
    elseif name == 'lo' then
      local number = tonumber(value)
      if lo == nil or number < lo then lo, lo_text = number, value end
    elseif name == 'hi' then
      local number = tonumber(value)
      if hi == nil or number > hi then hi, hi_text = number, value end
    else
      count = count + tonumber(value)
      buckets[name] = (buckets[name] or 0) + tonumber(value)
    end
  end
end
local out = {count, string.format('%.17g', sum), lo_text, hi_text}
for name, value in pairs(buckets) do
  out[#out + 1] = name
  out[#out + 1] = value
end
return out
