-- Write intents of the cache protocol (docs/cache-protocol.md, rule 10): a
-- writer marks the key before it writes MariaDB, so that if it dies between
-- its commit and its cache update, the key is not left holding the old row.
-- A marked key holds 'W|<writers>|<guard>': <guard> is the newest entry known
-- for the id (a user 'U|...' or a tombstone 'D|...'; empty if none). While
-- marked, reads miss and fills are refused (put_if_newer.lua); the mark
-- expires by itself after ARGV[5] ms if its writers never end.
--   KEYS[1]  the key
--   ARGV[1]  'begin' (one more writer), 'end' (one writer is done) or
--            'settle' (the repair: every writer is done)
--   ARGV[2]  end/settle: the entry the write left ('U|...' or 'D|...'), or ''
--   ARGV[3]  TTL in ms of a user entry, ARGV[4] of a tombstone,
--   ARGV[5]  of the mark
-- Returns the writers still open.

-- Order of entries: higher version first; at the same version a tombstone
-- (the row deleted at that version) over the user. -1: nothing to keep.
local function rank(entry)
  if not entry or entry == '' then return -1 end
  local kind, ver = string.match(entry, '^(%u)|(%d+)|')
  if kind == 'U' then return tonumber(ver) * 2 end
  if kind == 'D' then return tonumber(ver) * 2 + 1 end
  return -1
end

local cur = redis.call('GET', KEYS[1])
local writers, guard = 0, cur or ''
if cur then
  local n, rest = string.match(cur, '^W|(%d+)|(.*)$')
  if n then writers, guard = tonumber(n), rest end
end
if rank(guard) < 0 then guard = '' end

if ARGV[1] == 'begin' then
  redis.call('SET', KEYS[1], 'W|' .. (writers + 1) .. '|' .. guard, 'PX', ARGV[5])
  return writers + 1
end

if rank(ARGV[2]) > rank(guard) then guard = ARGV[2] end
local left = 0
if ARGV[1] == 'end' and writers > 1 then left = writers - 1 end
if left > 0 then
  redis.call('SET', KEYS[1], 'W|' .. left .. '|' .. guard, 'KEEPTTL')
elseif guard == '' then
  -- Nothing known: leave a miss (a negative entry stays as it is).
  if writers > 0 then redis.call('DEL', KEYS[1]) end
elseif guard ~= cur then
  local ttl = ARGV[3]
  if string.sub(guard, 1, 1) == 'D' then ttl = ARGV[4] end
  redis.call('SET', KEYS[1], guard, 'PX', ttl)
end
return left
