-- Add ARGV[1] to the counter KEYS[1]; see counter_incr in _writes.lua.
return counter_incr(KEYS[1], ARGV[1])
