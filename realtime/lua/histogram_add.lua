-- Record ARGV[1] in the histogram KEYS[1] (window ARGV[2] seconds, sketch bucket ARGV[3]);
-- see _writes.lua.
return histogram_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
