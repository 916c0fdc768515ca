-- The estimated number of distinct members over the slots of a unique count that overlap the
-- window (now - W, now]: PFCOUNT of their union. KEYS[1] series base key. ARGV[1] window.
return redis.call('PFCOUNT', unpack(window_slots(KEYS[1], tonumber(ARGV[1]))))
