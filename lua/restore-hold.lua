--[[
  restore-hold: put back a hold Redis lost (the reconciler found the reservation HELD in
  PostgreSQL and no hold here). `reserved` becomes the sum of the holds in the same step, so a hold
  whose units `reserved` still counted is not counted twice, and no hold can slip in between on
  units `reserved` did not count yet (which took reserved above total when it was a step of its
  own). Never beyond total: if others hold the units now, the hold stays lost here (an alert);
  PostgreSQL, which still counts it, keeps its promise all the same.

  KEYS (layout: src/stock/redis/keys.ts):
    KEYS[1]  item:{SKU}:stock
    KEYS[2]  item:{SKU}:holds
    KEYS[3]  item:{SKU}:done
    KEYS[4]  item:{SKU}:customers  (the restored hold counts for its customer)
  ARGV:
    ARGV[1]  reservationId
    ARGV[2]  quantity PostgreSQL holds for it
    ARGV[3]  the reservation's customerId ('' for none)
    ARGV[4]  its allocation as PostgreSQL recorded it (`loc=units,…`; '' or absent: `default`
             whole): put back there, and only if every one of those levels has the units free

  Returns {code, available, 0}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  the hold is back, and reserved is the sum of the holds
     Unchanged        0  the hold is there (it came back meanwhile): nothing changed
     AlreadyFinished -3  the reservation finished meanwhile: nothing changed
     Insufficient    -1  fewer than the quantity are free besides the other holds: nothing changed
     NotLoaded       -2  the SKU has no counters: nothing changed
]]
--- @include "includes/customers"
--- @include "includes/levels"

local total = redis.call('HGET', KEYS[1], 'total')
if not total then
  return {-2, 0, 0}
end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return {-3, 0, 0}
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return {0, 0, 0}
end
local others, per = recount(KEYS[1], KEYS[2], false)
local available = tonumber(total) - others
if available < tonumber(ARGV[2]) then
  return {-1, available, 0}
end
local ids, units = nil, nil
if ARGV[4] and ARGV[4] ~= '' then
  ids, units = parse_allocation(ARGV[4])
  local _, t = levels(KEYS[1])
  for k, loc in ipairs(ids) do
    local free = (t[loc] or 0) - (per[loc] or 0)
    if free < units[k] then
      return {-1, free, 0}
    end
  end
end
recount(KEYS[1], KEYS[2], true)
redis.call('HDEL', KEYS[1], 'a:' .. ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
reserve(KEYS[1], ARGV[1], tonumber(ARGV[2]), ids, units)
-- The customers hash may have kept the hold's count (another key than the holds): never twice.
if redis.call('HEXISTS', KEYS[4], 'o:' .. ARGV[1]) == 0 then
  note_hold(KEYS[4], ARGV[1], ARGV[3] or '', tonumber(ARGV[2]))
end
return {1, available, 0}
