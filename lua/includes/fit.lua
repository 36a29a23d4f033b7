--[[
  fit(stock, holds, customers): included by the scripts that lower a total applied from PostgreSQL
  (move, rebase, commit) and by load. Keys: see src/stock/redis/keys.ts.
]]
--- @include "includes/customers"
--- @include "includes/levels"
-- Keeps reserved <= total when a loss made promises collide (a lowered total below the units
-- held): drops holds until they fit (and their customers' held counts with them). Their
-- reservations stay HELD in PostgreSQL, which decides their commits (a sale beyond its total is
-- refused, and the reservation cancelled); the reconciler puts a dropped hold back if units free
-- up. On a SKU with levels the same holds per location: a level whose reserved passed its total
-- drops holds with units there. Returns the holds dropped.
local function fit(stock, holds, customers)
  local c = redis.call('HMGET', stock, 'total', 'reserved')
  local total, reserved = tonumber(c[1]), tonumber(c[2] or '0')
  local ids, t, r, spread = levels(stock)
  local over = {}
  local any = false
  if spread then
    for _, loc in ipairs(ids) do
      if r[loc] > t[loc] then
        over[loc] = true
        any = true
      end
    end
  end
  if reserved <= total and not any then
    return 0
  end
  local dropped = 0
  local all = redis.call('HGETALL', holds)
  for i = 1, #all, 2 do
    if reserved <= total and not any then
      break
    end
    local id, held = all[i], tonumber(all[i + 1])
    local at, units = allocation_of(stock, id, held)
    local hit = reserved > total
    for _, loc in ipairs(at) do
      hit = hit or over[loc] == true
    end
    if hit then
      unreserve(stock, id, held)
      redis.call('HDEL', holds, id)
      forget_hold(customers, id, held)
      reserved = reserved - held
      dropped = dropped + 1
      if spread then
        any = false
        for k, loc in ipairs(at) do
          r[loc] = r[loc] - units[k]
        end
        for _, loc in ipairs(ids) do
          over[loc] = r[loc] > t[loc]
          any = any or over[loc]
        end
      end
    end
  end
  return dropped
end
