--[[
  fit(stock, holds, customers): included by the scripts that lower a total applied from PostgreSQL
  (move, rebase, commit) and by load. Keys: see src/stock/redis/keys.ts.
]]
--- @include "includes/customers"
-- Keeps reserved <= total when a loss made promises collide (a lowered total below the units
-- held): drops holds until they fit (and their customers' held counts with them). Their
-- reservations stay HELD in PostgreSQL, which decides their commits (a sale beyond its total is
-- refused, and the reservation cancelled); the reconciler puts a dropped hold back if units free
-- up. Returns the holds dropped.
local function fit(stock, holds, customers)
  local c = redis.call('HMGET', stock, 'total', 'reserved')
  local total, reserved = tonumber(c[1]), tonumber(c[2] or '0')
  if reserved <= total then
    return 0
  end
  local dropped = 0
  local all = redis.call('HGETALL', holds)
  for i = 1, #all, 2 do
    if reserved <= total then
      break
    end
    redis.call('HDEL', holds, all[i])
    forget_hold(customers, all[i], tonumber(all[i + 1]))
    reserved = reserved - tonumber(all[i + 1])
    dropped = dropped + 1
  end
  redis.call('HSET', stock, 'reserved', reserved)
  return dropped
end
