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
    ARGV[4+2i]  line i's `sale` movements, one per location it sells from (the first allocations
                first): `id@location@units`, separated by `;` ('' when it sells nothing)

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

local function sales(spec)
  local out = {}
  for movement, loc, units in string.gmatch(spec, '(%d+)@([^@;]+)@(%d+)') do
    out[#out + 1] = { tonumber(movement), loc, tonumber(units) }
  end
  return out
end
local function applied(stock, movement)
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
  local sold = tonumber(ARGV[3 + 2 * i])
  if held and sold > tonumber(held) then
    return {-4, i, tonumber(held)}
  end
  if held then
    changes = changes + 1
  end
  for _, sale in ipairs(sales(ARGV[4 + 2 * i])) do
    if not applied(stock, sale[1]) then
      changes = changes + 1
    end
  end
end
if changes == 0 then
  return {-3, 0, 0}
end

for i = 1, lines do
  local stock, holds, done, customers = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local held = redis.call('HGET', holds, id)
  if held then
    unreserve(stock, id, tonumber(held))
    redis.call('HDEL', holds, id)
    forget_hold(customers, id, tonumber(held))
  end
  local lowered = false
  for _, sale in ipairs(sales(ARGV[4 + 2 * i])) do
    if not applied(stock, sale[1]) then
      add_to_level(stock, 't', sale[2], -sale[3])
      redis.call('HSET', stock, 'm:' .. sale[1], 1)
      add_bought(stock, customers, customer, sale[1], sale[3])
      lowered = true
    end
  end
  if lowered then
    fit(stock, holds, customers)
  end
  redis.call('ZADD', done, now, id)
  redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. cutoff)
end
return {1, 0, 0}
