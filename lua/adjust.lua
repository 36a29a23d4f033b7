--[[
  adjust: change a SKU's total by a signed delta (count corrections, damage, shrinkage).
  An adjustment never takes total below reserved: held units stay sellable to their holders.
  Idempotent by movement id.

  KEYS:
    KEYS[1]  item:{SKU}:stock   hash: total, reserved, name
    KEYS[2]  item:{SKU}:done    zset: finished reservation ids / applied movement ids -> ms
  ARGV:
    ARGV[1]  movement id (applied as member "m:<id>")
    ARGV[2]  delta (non-zero integer)
    ARGV[3]  now, ms since the epoch
    ARGV[4]  forget `done` entries scored before this, ms

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/scripts.ts):
     Applied          1  total changed; the figures after it
     AlreadyApplied   2  this movement was applied before: nothing changed
     NotLoaded       -2  the SKU has no counters (Redis lost its data): nothing changed
     WouldOversell   -6  total + delta < reserved (or < 0): nothing changed; the figures now
]]
local member = 'm:' .. ARGV[1]
if redis.call('ZSCORE', KEYS[2], member) then
  local c = redis.call('HMGET', KEYS[1], 'total', 'reserved')
  return {2, tonumber(c[1] or '0'), tonumber(c[2] or '0')}
end
local c = redis.call('HMGET', KEYS[1], 'total', 'reserved')
if not c[1] then
  return {-2, 0, 0}
end
local total, reserved, delta = tonumber(c[1]), tonumber(c[2] or '0'), tonumber(ARGV[2])
if total + delta < reserved or total + delta < 0 then
  return {-6, total, reserved}
end
total = redis.call('HINCRBY', KEYS[1], 'total', delta)
redis.call('ZADD', KEYS[2], ARGV[3], member)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return {1, total, reserved}
