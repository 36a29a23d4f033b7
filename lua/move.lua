--[[
  move: apply to a SKU's total a ledger movement already durable in PostgreSQL (a restock, a
  return, a positive adjustment, or a sale or adjustment the reconciler completes). Idempotent by
  movement id: a movement is in total when its id is at or below `mark` (the ledger position the
  counters were last loaded or checked at) or it is listed as field m:<id>.

  A lowering that leaves fewer units than are held (only after a loss) drops holds to fit. A
  sale or return of a customer's reservation changes what the customer bought (on a SKU with a
  per-customer limit), together with total, so once.

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
    KEYS[2]  item:{SKU}:holds
    KEYS[3]  item:{SKU}:customers
  ARGV:
    ARGV[1]  movement id (a stock_movements id)
    ARGV[2]  delta (a non-zero integer)
    ARGV[3]  for a sale or return: the customerId of its reservation, whose bought count moves by
             -delta; '' otherwise
    ARGV[4]  the movement's location ('' or absent: `default`); its level moves with total
             (includes/levels.lua), created on its first movement

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  total changed by delta; the figures after it (holds dropped to fit, if any)
     AlreadyApplied   2  this movement is in total already: nothing changed; the figures now
     NotLoaded       -2  the SKU has no counters (Redis lost its data): nothing changed; retry
                         once they are rebuilt
]]
--- @include "includes/fit"

local c = redis.call('HMGET', KEYS[1], 'total', 'reserved', 'mark')
if not c[1] then
  return {-2, 0, 0}
end
local movement = tonumber(ARGV[1])
if movement <= tonumber(c[3] or '0') or redis.call('HEXISTS', KEYS[1], 'm:' .. ARGV[1]) == 1 then
  return {2, tonumber(c[1]), tonumber(c[2] or '0')}
end
local loc = (ARGV[4] and ARGV[4] ~= '') and ARGV[4] or 'default'
local total = add_to_level(KEYS[1], 't', loc, tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'm:' .. ARGV[1], 1)
add_bought(KEYS[1], KEYS[3], ARGV[3] or '', movement, -tonumber(ARGV[2]))
fit(KEYS[1], KEYS[2], KEYS[3])
return {1, total, tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')}
