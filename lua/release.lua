--[[
  release: give back every unit a reservation holds. Idempotent: a second release finds no hold.

  KEYS, four per line i, all four sharing {SKU} (layout: src/stock/redis/keys.ts):
    KEYS[4i-3]  item:{SKU}:stock
    KEYS[4i-2]  item:{SKU}:holds
    KEYS[4i-1]  item:{SKU}:done
    KEYS[4i]    item:{SKU}:customers  (the hold's customer's held count goes with the hold)
  ARGV:
    ARGV[1]  reservationId
    ARGV[2]  now, ms since the epoch (score of the tombstone)
    ARGV[3]  forget `done` entries scored before this, ms (bounds the zset's size)
    ARGV[4]  tombstone: the member written to `done` so a late hold can never hold again:
             the reservationId once it is final; reservationId@run when one run gave up (its
             id stays usable); empty for none (a hold nobody owns, released by the reconciler)

  Each level's reserved goes down by the hold's allocation there (includes/levels.lua).
  Returns {code, units}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  `units` units went back to available
     Unchanged        0  nothing was held (already released or committed, or never held)
     NotLoaded       -2  line `units` has no counters (Redis lost its data): nothing changed;
                         retry once they are rebuilt
]]
--- @include "includes/customers"
--- @include "includes/levels"

if #KEYS % 4 ~= 0 then
  return redis.error_reply('release: KEYS must be four per line (stock, holds, done, customers)')
end
local id, now, cutoff, tombstone = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lines = #KEYS / 4
for i = 1, lines do
  if redis.call('EXISTS', KEYS[4 * i - 3]) == 0 then
    return {-2, i}
  end
end
local units = 0
for i = 1, lines do
  local stock, holds, done, customers = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local held = redis.call('HGET', holds, id)
  if held then
    unreserve(stock, id, tonumber(held))
    redis.call('HDEL', holds, id)
    forget_hold(customers, id, tonumber(held))
    units = units + tonumber(held)
  end
  if tombstone ~= '' then
    redis.call('ZADD', done, now, tombstone)
  end
  redis.call('ZREMRANGEBYSCORE', done, '-inf', '(' .. cutoff)
end
if units > 0 then
  return {1, units}
end
return {0, 0}
