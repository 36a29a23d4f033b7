--[[
  transfer: move unreserved units of one SKU between two of its locations, applying a transfer's
  two ledger movements (already durable in PostgreSQL, one transaction) to the levels in one
  step. Never moves units reserved at `from`. Idempotent by the movements' ids (see move.lua);
  the SKU's total does not change. Each movement's `m:<id>` keeps its delta (as adjust.lua's
  does), so the reconciler can tell a transfer whose transaction rolled back after this step.
  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
  ARGV:
    ARGV[1]  the `transfer_out` movement's id
    ARGV[2]  the `transfer_in` movement's id
    ARGV[3]  from (a location id)
    ARGV[4]  to (a location id)
    ARGV[5]  quantity (>= 1)
  Returns {code, available, 0}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  the units moved; `available` is what is left free at `from`
     AlreadyApplied   2  this transfer is in the levels already: nothing changed
     NotLoaded       -2  the SKU has no counters: nothing changed
     WouldOversell   -6  `from` has only `available` units free (total less reserved there):
                         nothing changed
]]
--- @include "includes/levels"
local c = redis.call('HMGET', KEYS[1], 'total', 'mark')
if not c[1] then
  return {-2, 0, 0}
end
local out, into, from, to, quantity = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local mark = tonumber(c[2] or '0')
if tonumber(out) <= mark or redis.call('HEXISTS', KEYS[1], 'm:' .. out) == 1 then
  return {2, 0, 0}
end
local _, t, r = levels(KEYS[1])
local free = (t[from] or 0) - (r[from] or 0)
if free < quantity then
  return {-6, math.max(free, 0), 0}
end
add_to_level(KEYS[1], 't', from, -quantity)
add_to_level(KEYS[1], 't', to, quantity)
redis.call('HSET', KEYS[1], 'm:' .. out, -quantity, 'm:' .. into, quantity)
return {1, free - quantity, 0}
