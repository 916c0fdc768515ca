-- Add the member ARGV[1] to the unique count KEYS[1] (window ARGV[2] seconds); see _writes.lua.
return unique_add(KEYS[1], ARGV[1], ARGV[2])
