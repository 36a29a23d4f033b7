--[[
  hold: hold every line of one reservation, or none of them.

  KEYS, three per line i (i = 1..n, in the reservation's line order; all three share {SKU}):
    KEYS[3i-2]  item:{SKU}:stock   hash: total, reserved, name, mark, m:<movement id>
    KEYS[3i-1]  item:{SKU}:holds   hash: reservationId -> held quantity
    KEYS[3i]    item:{SKU}:done    zset: finished reservations (reservationId, or
                                   reservationId@run for one run that gave up) -> ms
  ARGV:
    ARGV[1]     reservationId
    ARGV[2]     run: the workflow run holding (a run that gave up is tombstoned as id@run, so
                its late attempts are refused while a new run of the same id may hold)
    ARGV[2+i]   quantity of line i (integer 1..10000; the caller validates)

  Returns {code, line, available}; code is a ScriptCode (src/stock/scripts.ts):
     Applied          1  every line is held now
     AlreadyApplied   2  this reservation already holds every line (a retry): nothing changed
     Insufficient    -1  line `line` (1-based) asks for more than `available`: nothing changed
     NotLoaded       -2  line `line` has no counters (unknown SKU or Redis lost its data);
                         never read as zero or as plenty: nothing changed
     AlreadyFinished -3  this reservation (or this run) finished before: never hold it again
     HeldOtherwise   -7  line `line` holds another quantity for this id, or the id holds some of
                         the lines but not line `line` (another cart under the same id):
                         nothing changed
]]
local id, run = ARGV[1], ARGV[1] .. '@' .. ARGV[2]
local lines = #KEYS / 3
local todo, missing = {}, 0

for i = 1, lines do
  local stock, holds, done = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local quantity = tonumber(ARGV[2 + i])
  if redis.call('ZSCORE', done, id) or redis.call('ZSCORE', done, run) then
    return {-3, i, 0}
  end
  local counters = redis.call('HMGET', stock, 'total', 'reserved')
  if not counters[1] then
    return {-2, i, 0}
  end
  local held = redis.call('HGET', holds, id)
  if held then
    if tonumber(held) ~= quantity then
      return {-7, i, 0}
    end
  else
    local available = tonumber(counters[1]) - tonumber(counters[2] or '0')
    if available < quantity then
      return {-1, i, available}
    end
    missing = missing + 1
    todo[missing] = i
  end
end

if missing == 0 then
  return {2, 0, 0}
end
if missing < lines then
  -- Some lines held, others not: not a retry of this cart (a lost line comes back through the
  -- reconciler, from the reservation's lines in PostgreSQL).
  return {-7, todo[1], 0}
end
for _, i in ipairs(todo) do
  local quantity = tonumber(ARGV[2 + i])
  redis.call('HINCRBY', KEYS[3 * i - 2], 'reserved', quantity)
  redis.call('HSET', KEYS[3 * i - 1], id, quantity)
end
return {1, 0, 0}
