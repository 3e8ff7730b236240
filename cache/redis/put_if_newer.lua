-- The versioned conditional fill of the cache protocol (docs/cache-protocol.md,
-- rule 2): writes ARGV[2] under KEYS[1] with a TTL of ARGV[3] ms unless the
-- key holds a user or tombstone of version ARGV[1] or newer, or a write
-- intent (W, write_intent.lua). A negative entry (N) never blocks a real
-- row. Returns 1 if written, 0 if refused.
-- The one copy: polycrud-server embeds it at build time and both benchmark
-- peers read it at start, so all three share its SHA-1 (EVALSHA).
local cur = redis.call('GET', KEYS[1])
if cur then
  local kind, ver = string.match(cur, '^(%u)|(%d+)|')
  if kind == 'W' or (kind and kind ~= 'N' and tonumber(ver) >= tonumber(ARGV[1])) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
