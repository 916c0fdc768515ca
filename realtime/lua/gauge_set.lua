-- Set the gauge KEYS[1] to ARGV[1] (unit ARGV[2]); see gauge_set in _writes.lua.
return gauge_set(KEYS[1], ARGV[1], ARGV[2])
