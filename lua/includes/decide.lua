--[[
  decide: the rule of a hold, one copy for the script that applies it (hold.lua) and the one that
  only reports it (precheck.lua): whether one more line of a cart fits a SKU now. Keys: see
  src/stock/redis/keys.ts. Reply codes: ScriptCode (src/stock/redis/scripts.ts).
]]

-- A line's figures: {total, reserved, limit, held, bought} (limit nil on a SKU without
-- maxPerCustomer; held and bought are the customer's, read only when there is a limit and a
-- customer), or nil when the SKU has no counters (unknown, or Redis lost its data).
local function line_state(stock, customers, customer)
  local c = redis.call('HMGET', stock, 'total', 'reserved', 'maxPerCustomer')
  if not c[1] then
    return nil
  end
  local s = { total = tonumber(c[1]), reserved = tonumber(c[2] or '0'), limit = c[3] and tonumber(c[3]), held = 0, bought = 0 }
  if s.limit and customer ~= '' then
    local counts = redis.call('HMGET', customers, 'h:' .. customer, 'b:' .. customer)
    s.held, s.bought = tonumber(counts[1] or '0'), tonumber(counts[2] or '0')
  end
  return s
end

-- nil when `quantity` more units of line `i` can be held for `customer` ('' for none), or the
-- refusal: {CustomerLimit -8, i, limit, held, bought} (no customer on a limited SKU, or the
-- customer would pass the limit), then {Insufficient -1, i, available}.
local function line_refusal(s, i, customer, quantity)
  if s.limit then
    if customer == '' then
      return { -8, i, s.limit, 0, 0 }
    end
    if s.held + s.bought + quantity > s.limit then
      return { -8, i, s.limit, s.held, s.bought }
    end
  end
  local available = s.total - s.reserved
  if available < quantity then
    return { -1, i, available }
  end
  return nil
end
