--[[
  commit: turn a reservation's holds into sales. Line i sells at most what it holds; whatever it
  held beyond that is released in the same step. Idempotent by reservation id.
  The caller has already made the sale durable in PostgreSQL.

  KEYS, three per line i (all three share {SKU}):
    KEYS[3i-2]  item:{SKU}:stock   hash: total, reserved, name
    KEYS[3i-1]  item:{SKU}:holds   hash: reservationId -> held quantity
    KEYS[3i]    item:{SKU}:done    zset: finished reservation ids / applied movement ids -> ms
  ARGV:
    ARGV[1]     reservationId
    ARGV[2]     now, ms since the epoch (score of the `done` entry)
    ARGV[3]     forget `done` entries scored before this, ms
    ARGV[3+i]   units of line i to sell (integer 0..held)

  Returns {code, line, held}; code is a ScriptCode (src/stock/scripts.ts):
     Applied          1  every line's sale applied, the rest of its hold released
     AlreadyFinished -3  this reservation was committed or released before: nothing changed
     NotLoaded       -2  line `line` has no counters (Redis lost its data): nothing changed
     ExceedsHold     -4  line `line` would sell more than its `held` units: nothing changed
     NotHeld         -5  line `line` holds nothing for this reservation, which never finished
                         here: nothing changed
]]
local id, now, cutoff = ARGV[1], ARGV[2], ARGV[3]
local lines = #KEYS / 3
local held = {}

for i = 1, lines do
  local stock, holds, done = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('EXISTS', stock) == 0 then
    return {-2, i, 0}
  end
  local h = redis.call('HGET', holds, id)
  if not h then
    if redis.call('ZSCORE', done, id) then
      return {-3, i, 0}
    end
    return {-5, i, 0}
  end
  held[i] = tonumber(h)
  if tonumber(ARGV[3 + i]) > held[i] then
    return {-4, i, held[i]}
  end
end

for i = 1, lines do
  local stock, holds, done = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local sold = tonumber(ARGV[3 + i])
  if sold > 0 then
    redis.call('HINCRBY', stock, 'total', -sold)
  end
  redis.call('HINCRBY', stock, 'reserved', -held[i])
  redis.call('HDEL', holds, id)
  redis.call('ZADD', done, now, id)
  redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. cutoff)
end
return {1, 0, 0}
