-- Many writes in one call: KEYS[i] is the key of write i, ARGV[3i-2 .. 3i] its operation
-- code (c counter, g gauge, h histogram, m merged histogram, r rate, u unique, t top-k) and
-- two arguments (see _writes.lua).
-- Each write runs under pcall, so one failing write (e.g. WRONGTYPE) does not stop the
-- others; its slot in the reply is the error. Returns one reply per write, in order.
local writes = {
  c = counter_incr, g = gauge_set, m = histogram_merge, r = rate_track, u = unique_add,
  t = top_add,
  h = function(key, value, window)
    return histogram_add(key, value, window, bucket_of(tonumber(value)))
  end,
}
local out = {}
for i = 1, #KEYS do
  local ok, result = pcall(writes[ARGV[3 * i - 2]], KEYS[i], ARGV[3 * i - 1], ARGV[3 * i])
  if ok then
    out[i] = result
  elseif type(result) == 'table' and result.err then
    out[i] = result
  else
    out[i] = redis.error_reply(tostring(result))
  end
end
return out
