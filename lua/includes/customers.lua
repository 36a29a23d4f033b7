--[[
  customers: the per-customer counts of one SKU (item:{SKU}:customers: h:, o:, b:; layout:
  src/stock/redis/keys.ts), kept in step with the holds and the sales by the scripts that change
  them. b: counts only movements after the stock hash's `bmark`, once each.
]]
-- Records a new live hold of `customer` ('' for none).
local function note_hold(customers, id, customer, quantity)
  if customer == '' then
    return
  end
  redis.call('HSET', customers, 'o:' .. id, customer)
  redis.call('HINCRBY', customers, 'h:' .. customer, quantity)
end

-- Lowers the count of the customer of a hold that is going away (released, sold or dropped).
local function forget_hold(customers, id, quantity)
  local customer = redis.call('HGET', customers, 'o:' .. id)
  if not customer then
    return
  end
  redis.call('HDEL', customers, 'o:' .. id)
  if redis.call('HINCRBY', customers, 'h:' .. customer, -quantity) <= 0 then
    redis.call('HDEL', customers, 'h:' .. customer)
  end
end

-- Adds `units` (negative for a return) to what `customer` bought, for a movement being applied to
-- total now (so once per movement): only on a SKU with a limit, and only for a movement after
-- `bmark` (those up to it are in the loaded figures).
local function add_bought(stock, customers, customer, movement, units)
  if customer == '' or units == 0 then
    return
  end
  local c = redis.call('HMGET', stock, 'maxPerCustomer', 'bmark')
  if not c[1] or movement <= tonumber(c[2] or '0') then
    return
  end
  if redis.call('HINCRBY', customers, 'b:' .. customer, units) <= 0 then
    redis.call('HDEL', customers, 'b:' .. customer)
  end
end
