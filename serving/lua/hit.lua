-- A cache lookup in one round trip: the entry, returned only while every version it was
-- written with (the namespace generation, then its own tags') is still current.
-- KEYS[1]: the entry. ARGV[1]: the namespace's root ("{<namespace>::}", serving/layout.py); every
-- key read here shares its hash slot, so the script runs on Redis Cluster too.
-- Returns the entry; 0 when it is invalid (a version moved or is gone, a malformed header,
-- not a string); nil when there is none.
-- Header (serving/entry.py): c2 <expires_ms> <version>,<version>... [<tag> <tag>...]
local raw = redis.pcall('GET', KEYS[1])
if not raw then return nil end
if type(raw) ~= 'string' or string.sub(raw, 1, 3) ~= 'c2 ' then return 0 end
local newline = string.find(raw, '\n', 4, true)
if not newline then return 0 end
local header = string.sub(raw, 4, newline - 1)
local after_expiry = string.find(header, ' ', 1, true)
if not after_expiry then return 0 end
local after_versions = string.find(header, ' ', after_expiry + 1, true)
local root = ARGV[1]
local keys = {root .. 'g'}
local versions
if after_versions then
  versions = string.sub(header, after_expiry + 1, after_versions - 1)
  for tag in string.gmatch(string.sub(header, after_versions + 1), '%S+') do
    keys[#keys + 1] = root .. 't:' .. tag
  end
else
  versions = string.sub(header, after_expiry + 1)
end
local current = redis.call('MGET', unpack(keys))
for i = 1, #current do
  if not current[i] then return 0 end
end
if table.concat(current, ',') ~= versions then return 0 end
return raw
