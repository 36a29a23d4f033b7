--[[
  restock: raise a SKU's total by a movement already recorded in PostgreSQL (restock or return).
  Idempotent by movement id.

  KEYS:
    KEYS[1]  item:{SKU}:stock   hash: total, reserved, name
    KEYS[2]  item:{SKU}:done    zset: finished reservation ids / applied movement ids -> ms
  ARGV:
    ARGV[1]  movement id (a ledger row id, applied as member "m:<id>")
    ARGV[2]  units to add (integer > 0)
    ARGV[3]  now, ms since the epoch
    ARGV[4]  forget `done` entries scored before this, ms

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/scripts.ts):
     Applied          1  total raised; the figures after it
     AlreadyApplied   2  this movement was applied before: nothing changed
     NotLoaded       -2  the SKU has no counters (Redis lost its data): nothing changed; the
                         rebuild from PostgreSQL includes the movement
]]
local member = 'm:' .. ARGV[1]
if redis.call('ZSCORE', KEYS[2], member) then
  local c = redis.call('HMGET', KEYS[1], 'total', 'reserved')
  return {2, tonumber(c[1] or '0'), tonumber(c[2] or '0')}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-2, 0, 0}
end
local total = redis.call('HINCRBY', KEYS[1], 'total', tonumber(ARGV[2]))
redis.call('ZADD', KEYS[2], ARGV[3], member)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return {1, total, tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')}
