--[[
  hold: hold every line of one reservation, or none of them.

  KEYS, three per line i (i = 1..n, in the reservation's line order; all three share {SKU}):
    KEYS[3i-2]  item:{SKU}:stock   hash: total, reserved, name
    KEYS[3i-1]  item:{SKU}:holds   hash: reservationId -> held quantity
    KEYS[3i]    item:{SKU}:done    zset: finished reservation ids / applied movement ids -> ms
  ARGV:
    ARGV[1]     reservationId
    ARGV[1+i]   quantity of line i (integer 1..10000; the caller validates)

  Returns {code, line, available}; code is a ScriptCode (src/stock/scripts.ts):
     Applied          1  every line is held now
     AlreadyApplied   2  this reservation already holds its lines (a retry): nothing changed
     Insufficient    -1  line `line` (1-based) asks for more than `available`: nothing changed
     NotLoaded       -2  line `line` has no counters (unknown SKU or Redis lost its data);
                         never read as zero or as plenty: nothing changed
     AlreadyFinished -3  this reservation was committed or released before: never hold it again
]]
local id = ARGV[1]
local lines = #KEYS / 3

if redis.call('HEXISTS', KEYS[2], id) == 1 then
  return {2, 0, 0}
end

local quantities = {}
for i = 1, lines do
  local stock, done = KEYS[3 * i - 2], KEYS[3 * i]
  if redis.call('ZSCORE', done, id) then
    return {-3, i, 0}
  end
  local counters = redis.call('HMGET', stock, 'total', 'reserved')
  if not counters[1] then
    return {-2, i, 0}
  end
  local available = tonumber(counters[1]) - tonumber(counters[2] or '0')
  local quantity = tonumber(ARGV[1 + i])
  if available < quantity then
    return {-1, i, available}
  end
  quantities[i] = quantity
end

for i = 1, lines do
  redis.call('HINCRBY', KEYS[3 * i - 2], 'reserved', quantities[i])
  redis.call('HSET', KEYS[3 * i - 1], id, quantities[i])
end
return {1, 0, 0}
