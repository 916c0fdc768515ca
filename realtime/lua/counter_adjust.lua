-- Correct a counter's total and one past hour bucket by the same delta (reconciliation).
-- KEYS[1] counter key. ARGV: delta, hour index. Returns the new total or
-- {new total, registration time}.
local key, delta = KEYS[1], ARGV[1]
local total = incr(key, delta)
if IDLE > 0 then redis.call('EXPIRE', key, IDLE) end
add_to_hour(key, tonumber(ARGV[2]), delta)
local registered = refresh(key, nil)
if registered > 0 then return {total, registered} end
return total
