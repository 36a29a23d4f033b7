--[[
  settings: set a SKU's name, low-stock threshold and per-customer limit as PostgreSQL has them
  (PATCH /v1/skus/:sku, inside its transaction, or the reconciler's repair). With a limit, what
  each customer bought is replaced by the snapshot's figures, taken under the SKU's row lock, and
  `bmark` set to the snapshot's ledger position: sales and returns after it are added by the
  scripts that apply them (includes/customers.lua). Without a limit the bought counts go.

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
    KEYS[2]  item:{SKU}:customers
  ARGV:
    ARGV[1]  name
    ARGV[2]  lowStockThreshold ('' for none)
    ARGV[3]  maxPerCustomer ('' for none)
    ARGV[4]  bmark: the SKU's last ledger movement id in the snapshot of the bought counts
    ARGV[5], ARGV[6], ...  pairs of customerId, units bought minus returned (0 are left out)

  Returns {code, total, reserved}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  settings set; the figures now
     NotLoaded       -2  the SKU has no counters: nothing changed
]]
local c = redis.call('HMGET', KEYS[1], 'total', 'reserved')
if not c[1] then
  return {-2, 0, 0}
end
redis.call('HSET', KEYS[1], 'name', ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'lowStockThreshold')
else
  redis.call('HSET', KEYS[1], 'lowStockThreshold', ARGV[2])
end
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(field, 1, 2) == 'b:' then
    redis.call('HDEL', KEYS[2], field)
  end
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], 'maxPerCustomer', 'bmark')
else
  redis.call('HSET', KEYS[1], 'maxPerCustomer', ARGV[3], 'bmark', ARGV[4])
  for i = 5, #ARGV, 2 do
    redis.call('HSET', KEYS[2], 'b:' .. ARGV[i], ARGV[i + 1])
  end
end
return {1, tonumber(c[1]), tonumber(c[2] or '0')}
