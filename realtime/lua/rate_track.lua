-- Count ARGV[1] events for the rate KEYS[1] (window ARGV[2] seconds); see _writes.lua.
return rate_track(KEYS[1], ARGV[1], ARGV[2])
