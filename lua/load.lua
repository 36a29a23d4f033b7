--[[
  load: set one SKU's counters, settings, holds and customer counts from a PostgreSQL snapshot (a
  new SKU, or the rebuild after Redis lost its data).

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
    KEYS[2]  item:{SKU}:holds
    KEYS[3]  item:{SKU}:customers
  ARGV:
    ARGV[1]  mode: "missing" loads only a SKU that has no counters (safe beside live traffic);
             "force" replaces them (a new SKU, whose old counters are from a previous life)
    ARGV[2]  total (PostgreSQL skus.total)
    ARGV[3]  name
    ARGV[4]  mark: the SKU's last ledger movement id in the snapshot (movements up to it are in
             total, and in the bought counts)
    ARGV[5]  maxPerCustomer ('' for none)
    ARGV[6]  lowStockThreshold ('' for none)
    ARGV[7]  n: the number of holds that follow
    ARGV[8..7+3n]   triples of reservationId, quantity, customerId ('' for none) of the SKU's
                    HELD reservations
    then     pairs of customerId, units bought minus returned (only with a limit; 0 are left out)

  Holds beyond total (possible only after a loss, see includes/fit.lua) are not all loaded.

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  counters set; reserved = sum of the holds loaded
     Unchanged        0  mode "missing" and the SKU had counters: nothing changed; figures now
]]
--- @include "includes/fit"

if ARGV[1] == 'missing' and redis.call('EXISTS', KEYS[1]) == 1 then
  local c = redis.call('HMGET', KEYS[1], 'total', 'reserved')
  return {0, tonumber(c[1]), tonumber(c[2] or '0')}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local reserved = 0
local holds = tonumber(ARGV[7])
for i = 8, 7 + 3 * holds, 3 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  note_hold(KEYS[3], ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 1]))
  reserved = reserved + tonumber(ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'total', ARGV[2], 'reserved', reserved, 'name', ARGV[3], 'mark', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'maxPerCustomer', ARGV[5], 'bmark', ARGV[4])
  for i = 8 + 3 * holds, #ARGV, 2 do
    redis.call('HSET', KEYS[3], 'b:' .. ARGV[i], ARGV[i + 1])
  end
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'lowStockThreshold', ARGV[6])
end
fit(KEYS[1], KEYS[2], KEYS[3])
return {1, tonumber(ARGV[2]), tonumber(redis.call('HGET', KEYS[1], 'reserved'))}
