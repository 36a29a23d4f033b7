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
    ARGV[8]  the SKU's levels, `loc=total,loc=total` (PostgreSQL's stock_levels), or '' for a SKU
             whose one level is `default` (then no level fields are written: includes/levels.lua)
    ARGV[9..8+4n]   quads of reservationId, quantity, customerId ('' for none) and allocation
                    (`loc=units,…`, '' for `default` whole) of the SKU's HELD reservations
    then     pairs of customerId, units bought minus returned (only with a limit; 0 are left out)

  Holds beyond total (possible only after a loss, see includes/fit.lua) are not all loaded.

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  counters set; reserved = sum of the holds loaded
     Unchanged        0  mode "missing" and the SKU had counters: nothing changed; figures now
]]
--- @include "includes/fit"
--- @include "includes/levels"

if ARGV[1] == 'missing' and redis.call('EXISTS', KEYS[1]) == 1 then
  local c = redis.call('HMGET', KEYS[1], 'total', 'reserved')
  return {0, tonumber(c[1]), tonumber(c[2] or '0')}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local holds = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], 'total', ARGV[2], 'reserved', 0, 'name', ARGV[3], 'mark', ARGV[4])
local at, totals = parse_allocation(ARGV[8])
if #at > 0 then
  local fields = { 'locs', table.concat(at, ',') }
  for k, loc in ipairs(at) do
    fields[#fields + 1] = 't:' .. loc
    fields[#fields + 1] = totals[k]
    fields[#fields + 1] = 'r:' .. loc
    fields[#fields + 1] = 0
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
for i = 9, 8 + 4 * holds, 4 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  note_hold(KEYS[3], ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 1]))
  local ids, units = nil, nil
  if ARGV[i + 3] ~= '' then
    ids, units = parse_allocation(ARGV[i + 3])
  end
  reserve(KEYS[1], ARGV[i], tonumber(ARGV[i + 1]), ids, units)
end
write_lv(KEYS[1])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'maxPerCustomer', ARGV[5], 'bmark', ARGV[4])
  for i = 9 + 4 * holds, #ARGV, 2 do
    redis.call('HSET', KEYS[3], 'b:' .. ARGV[i], ARGV[i + 1])
  end
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'lowStockThreshold', ARGV[6])
end
fit(KEYS[1], KEYS[2], KEYS[3])
return {1, tonumber(ARGV[2]), tonumber(redis.call('HGET', KEYS[1], 'reserved'))}
