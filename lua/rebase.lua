--[[
  rebase: set a SKU's total and mark from the reconciler's comparison with PostgreSQL, only if
  total is still the figure it observed (compare-and-set). With the same total it is a
  checkpoint: every movement up to `mark` is in total, so their m:<id> fields can go.

  A total set below the units held drops holds to fit (see move.lua).

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
    KEYS[2]  item:{SKU}:holds
    KEYS[3]  item:{SKU}:customers  (a dropped hold lowers its customer's h:)
  ARGV:
    ARGV[1]  the total the reconciler observed
    ARGV[2]  the total to set
    ARGV[3]  the mark to set: every movement up to it is in the new total
    ARGV[4]  the levels' totals to set with it, `loc=total,…` (PostgreSQL's movements per location
             up to the mark), or '' / absent: a SKU whose one level is `default`

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  total and mark set; the figures after it
     Unchanged        0  total moved since it was observed: nothing changed; the figures now
     NotLoaded       -2  the SKU has no counters: nothing changed
]]
--- @include "includes/fit"
--- @include "includes/levels"

local c = redis.call('HMGET', KEYS[1], 'total', 'reserved')
if not c[1] then
  return {-2, 0, 0}
end
if c[1] ~= ARGV[1] then
  return {0, tonumber(c[1]), tonumber(c[2] or '0')}
end
local mark = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'total', ARGV[2], 'mark', mark)
local at, totals = parse_allocation(ARGV[4])
for k, loc in ipairs(at) do
  ensure_level(KEYS[1], loc)
  redis.call('HSET', KEYS[1], 't:' .. loc, totals[k])
end
write_lv(KEYS[1])
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local id = string.match(field, '^m:(%d+)$')
  if id and tonumber(id) <= mark then
    redis.call('HDEL', KEYS[1], field)
  end
end
fit(KEYS[1], KEYS[2], KEYS[3])
return {1, tonumber(ARGV[2]), tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')}
