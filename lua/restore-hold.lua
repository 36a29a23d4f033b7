--[[
  restore-hold: put back a hold Redis lost (the reconciler found the reservation HELD in
  PostgreSQL and no hold here, twice, a grace period apart).

  KEYS:
    KEYS[1]  item:{SKU}:stock   hash: total, reserved, name, mark, m:<movement id>
    KEYS[2]  item:{SKU}:holds   hash: reservationId -> held quantity
    KEYS[3]  item:{SKU}:done    zset: finished reservations -> ms
  ARGV:
    ARGV[1]  reservationId
    ARGV[2]  quantity PostgreSQL holds for it

  Returns {code, reserved, 0}; code is a ScriptCode (src/stock/scripts.ts):
     Applied          1  the hold is back; reserved after it
     Unchanged        0  the hold is there (it came back meanwhile): nothing changed
     AlreadyFinished -3  the reservation finished meanwhile: nothing changed
     NotLoaded       -2  the SKU has no counters: nothing changed
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-2, 0, 0}
end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return {-3, 0, 0}
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return {0, 0, 0}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1, redis.call('HINCRBY', KEYS[1], 'reserved', tonumber(ARGV[2])), 0}
