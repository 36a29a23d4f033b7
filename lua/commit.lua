--[[
  commit: turn a reservation's holds into sales, once the sales are durable in PostgreSQL. Line i
  sells `sold` units (its ledger movement `movement`) and releases the rest of its hold.
  Idempotent: the hold goes once, and each movement changes total once (see move.lua). The
  customer's held count goes with the hold, and on a SKU with a per-customer limit the sale is
  added to what the customer bought, together with total, so also once per movement.

  KEYS, four per line i, all four sharing {SKU} (layout: src/stock/redis/keys.ts):
    KEYS[4i-3]  item:{SKU}:stock
    KEYS[4i-2]  item:{SKU}:holds
    KEYS[4i-1]  item:{SKU}:done
    KEYS[4i]    item:{SKU}:customers  (the hold's customer's held count goes with the hold)
  ARGV:
    ARGV[1]     reservationId
    ARGV[2]     now, ms since the epoch (score of the tombstone)
    ARGV[3]     forget `done` entries scored before this, ms
    ARGV[4]     the reservation's customerId ('' for none): whose bought count the sales raise
    ARGV[3+2i]  units line i sells (0..held)
    ARGV[4+2i]  the id of line i's `sale` movement (0 when it sells nothing)

  Returns {code, line, held}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  done: holds released, totals lowered by the sales not applied before.
                         A line whose hold Redis lost still has its sale applied to total (and
                         drops other holds if they no longer fit, see move.lua); one whose
                         counters were rebuilt after the sale (mark >= movement) not.
     AlreadyFinished -3  nothing left to do (a retried commit): nothing changed
     NotLoaded       -2  line `line` has no counters (Redis lost its data): nothing changed;
                         retry once they are rebuilt
     ExceedsHold     -4  line `line` holds `held` units, fewer than it sells: nothing changed
]]
--- @include "includes/fit"

if #KEYS % 4 ~= 0 then
  return redis.error_reply('commit: KEYS must be four per line (stock, holds, done, customers)')
end
local id, now, cutoff, customer = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lines = #KEYS / 4

local function applied(stock, movement)
  if movement == 0 then
    return true
  end
  local mark = tonumber(redis.call('HGET', stock, 'mark') or '0')
  return movement <= mark or redis.call('HEXISTS', stock, 'm:' .. movement) == 1
end

local changes = 0
for i = 1, lines do
  local stock, holds = KEYS[4 * i - 3], KEYS[4 * i - 2]
  if redis.call('EXISTS', stock) == 0 then
    return {-2, i, 0}
  end
  local held = redis.call('HGET', holds, id)
  local sold, movement = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  if held and sold > tonumber(held) then
    return {-4, i, tonumber(held)}
  end
  if held or not applied(stock, movement) then
    changes = changes + 1
  end
end
if changes == 0 then
  return {-3, 0, 0}
end

for i = 1, lines do
  local stock, holds, done, customers = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local sold, movement = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local held = redis.call('HGET', holds, id)
  if held then
    redis.call('HINCRBY', stock, 'reserved', -tonumber(held))
    redis.call('HDEL', holds, id)
    forget_hold(customers, id, tonumber(held))
  end
  if not applied(stock, movement) then
    redis.call('HINCRBY', stock, 'total', -sold)
    redis.call('HSET', stock, 'm:' .. movement, 1)
    add_bought(stock, customers, customer, movement, sold)
    fit(stock, holds, customers)
  end
  redis.call('ZADD', done, now, id)
  redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. cutoff)
end
return {1, 0, 0}
