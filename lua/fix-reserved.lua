--[[
  fix-reserved: make `reserved` the sum of the holds again, and on a SKU with levels each level's
  `r:<loc>` the sum of the holds' allocations there (includes/levels.lua) (they part only when Redis loses one
  key of the two, as after a failover to a replica that missed some writes).

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
    KEYS[2]  item:{SKU}:holds

  Returns {code, reserved before, reserved now}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  reserved was wrong and is the sum of the holds now
     Unchanged        0  reserved is the sum of the holds: nothing changed
     NotLoaded       -2  the SKU has no counters: nothing changed
]]
--- @include "includes/levels"
local reserved = redis.call('HGET', KEYS[1], 'reserved')
if not reserved then
  return {-2, 0, 0}
end
local sum, _, differs = recount(KEYS[1], KEYS[2], false)
if not differs then
  return {0, sum, sum}
end
recount(KEYS[1], KEYS[2], true)
return {1, tonumber(reserved), sum}
