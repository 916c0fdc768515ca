-- Count one occurrence of ARGV[1] in the top-k KEYS[1] (window ARGV[2] seconds); see _writes.lua.
return top_add(KEYS[1], ARGV[1], ARGV[2])
