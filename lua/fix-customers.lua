--[[
  fix-customers: make each customer's held count (h:) the sum of the SKU's live holds of that
  customer again, and each hold's o: field its customer (they part only when Redis loses some
  writes of one key and not of the other, as after a failover to a replica that missed some).
  Computed from the holds in this same step, so a hold landing meanwhile is never miscounted.

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:holds
    KEYS[2]  item:{SKU}:customers
  ARGV:
    ARGV[1], ARGV[2], ...  pairs of reservationId, customerId from PostgreSQL, for holds whose
                           o: field may be lost (an o: field present wins: it was written with
                           the hold)

  Returns {code, fields changed, 0}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  some h: or o: fields were wrong and are right now
     Unchanged        0  every h: and o: field was right: nothing changed
]]
local known = {}
for i = 1, #ARGV, 2 do
  known[ARGV[i]] = ARGV[i + 1]
end
local have = {}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local kind = string.sub(all[i], 1, 2)
  if kind == 'h:' or kind == 'o:' then
    have[all[i]] = all[i + 1]
  end
end
local want = {}
local holds = redis.call('HGETALL', KEYS[1])
for i = 1, #holds, 2 do
  local customer = have['o:' .. holds[i]] or known[holds[i]]
  if customer and customer ~= '' then
    want['o:' .. holds[i]] = customer
    want['h:' .. customer] = tostring(tonumber(want['h:' .. customer] or '0') + tonumber(holds[i + 1]))
  end
end
local changed = 0
for field, value in pairs(have) do
  if want[field] == nil then
    redis.call('HDEL', KEYS[2], field)
    changed = changed + 1
  end
end
for field, value in pairs(want) do
  if have[field] ~= value then
    redis.call('HSET', KEYS[2], field, value)
    changed = changed + 1
  end
end
if changed > 0 then
  return {1, changed, 0}
end
return {0, 0, 0}
