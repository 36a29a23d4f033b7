--[[
  adjust: lower a SKU's total (count corrections, damage, shrinkage) unless that takes it below
  reserved: held units stay sellable to their holders. Runs inside the PostgreSQL transaction that
  records the movement, so a refusal rolls it back. Idempotent by movement id (see move.lua). The
  movement's field keeps its delta (m:<id> = delta): should the transaction roll back after this
  ran (a Redis that answered too late, frozen or slow; a PostgreSQL that failed at COMMIT), the
  reconciler finds a movement Redis applied that PostgreSQL never recorded, and undoes it.

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
  ARGV:
    ARGV[1]  movement id
    ARGV[2]  delta (a negative integer)
    ARGV[3]  the movement's location ('' or absent: `default`): the level lowered, and judged
             (its total may not go below its own reserved)

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  total changed; the figures after it
     AlreadyApplied   2  this movement is in total already: nothing changed
     NotLoaded       -2  the SKU has no counters (Redis lost its data): nothing changed
     WouldOversell   -6  total + delta < reserved (or < 0), at the SKU or at the location:
                         nothing changed; the SKU's figures now
]]
--- @include "includes/levels"
local c = redis.call('HMGET', KEYS[1], 'total', 'reserved', 'mark')
if not c[1] then
  return {-2, 0, 0}
end
local total, reserved, delta = tonumber(c[1]), tonumber(c[2] or '0'), tonumber(ARGV[2])
if tonumber(ARGV[1]) <= tonumber(c[3] or '0') or redis.call('HEXISTS', KEYS[1], 'm:' .. ARGV[1]) == 1 then
  return {2, total, reserved}
end
if total + delta < reserved or total + delta < 0 then
  return {-6, total, reserved}
end
local loc = (ARGV[3] and ARGV[3] ~= '') and ARGV[3] or 'default'
local _, t, r = levels(KEYS[1])
if (t[loc] or 0) + delta < (r[loc] or 0) then
  return {-6, total, reserved}
end
total = add_to_level(KEYS[1], 't', loc, delta)
redis.call('HSET', KEYS[1], 'm:' .. ARGV[1], delta)
return {1, total, reserved}
