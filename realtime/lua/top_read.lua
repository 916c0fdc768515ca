-- The ARGV[2] heaviest items over the slots of a top-k that overlap the window (now - W, now]:
-- each item's counts summed over the slots. KEYS[1] series base key. ARGV[1] window seconds.
-- Returns {item1, count1, item2, count2, ...}, heaviest first (ties by item).
local totals = {}
for _, key in ipairs(window_slots(KEYS[1], tonumber(ARGV[1]))) do
  local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    totals[entries[i]] = (totals[entries[i]] or 0) + tonumber(entries[i + 1])
  end
end
local ranked = {}
for item, count in pairs(totals) do ranked[#ranked + 1] = {item, count} end
table.sort(ranked, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[1] < b[1]
end)
local out = {}
for i = 1, math.min(tonumber(ARGV[2]), #ranked) do
  out[#out + 1] = ranked[i][1]
  out[#out + 1] = ranked[i][2]
end
return out
