--[[
  fix-reserved: make `reserved` the sum of the holds again (they part only when Redis loses one
  key of the two, as after a failover to a replica that missed some writes).

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
    KEYS[2]  item:{SKU}:holds

  Returns {code, reserved before, reserved now}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  reserved was wrong and is the sum of the holds now
     Unchanged        0  reserved is the sum of the holds: nothing changed
     NotLoaded       -2  the SKU has no counters: nothing changed
]]
local reserved = redis.call('HGET', KEYS[1], 'reserved')
if not reserved then
  return {-2, 0, 0}
end
local sum = 0
for _, quantity in ipairs(redis.call('HVALS', KEYS[2])) do
  sum = sum + tonumber(quantity)
end
if tonumber(reserved) == sum then
  return {0, sum, sum}
end
redis.call('HSET', KEYS[1], 'reserved', sum)
return {1, tonumber(reserved), sum}
