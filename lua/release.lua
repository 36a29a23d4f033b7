--[[
  release: give back every unit a reservation holds. Idempotent: a second release finds no hold.

  KEYS, three per line i (all three share {SKU}):
    KEYS[3i-2]  item:{SKU}:stock   hash: total, reserved, name
    KEYS[3i-1]  item:{SKU}:holds   hash: reservationId -> held quantity
    KEYS[3i]    item:{SKU}:done    zset: finished reservation ids / applied movement ids -> ms
  ARGV:
    ARGV[1]  reservationId
    ARGV[2]  now, ms since the epoch (score of the `done` entry)
    ARGV[3]  forget `done` entries scored before this, ms (bounds the zset's size)

  Returns {code, units}; code is a ScriptCode (src/stock/scripts.ts):
     Applied          1  `units` units went back to available
     Unchanged        0  nothing was held (already released or committed, or never held)
  A line whose counters are missing (Redis lost its data) is skipped: the rebuild from
  PostgreSQL, where this reservation is no longer HELD, will not count it.
]]
local id, now, cutoff = ARGV[1], ARGV[2], ARGV[3]
local units = 0
for i = 1, #KEYS / 3 do
  local stock, holds, done = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local held = redis.call('HGET', holds, id)
  if held and redis.call('EXISTS', stock) == 1 then
    redis.call('HINCRBY', stock, 'reserved', -tonumber(held))
    units = units + tonumber(held)
  end
  redis.call('HDEL', holds, id)
  redis.call('ZADD', done, now, id)
  redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. cutoff)
end
if units > 0 then
  return {1, units}
end
return {0, 0}
