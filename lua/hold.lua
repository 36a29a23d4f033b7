--[[
  hold: hold every line of one reservation, or none of them; on a SKU with a per-customer limit,
  only while the customer's held plus bought units stay within it (checked in this same step).

  KEYS, four per line i (i = 1..n, in the reservation's line order), all four sharing {SKU}
  (layout: src/stock/redis/keys.ts):
    KEYS[4i-3]  item:{SKU}:stock
    KEYS[4i-2]  item:{SKU}:holds
    KEYS[4i-1]  item:{SKU}:done       (reservationId, or reservationId@run for one run that gave up)
    KEYS[4i]    item:{SKU}:customers
  ARGV:
    ARGV[1]     reservationId
    ARGV[2]     run: the workflow run holding (a run that gave up is tombstoned as id@run, so
                its late attempts are refused while a new run of the same id may hold)
    ARGV[3]     customerId ('' for none)
    ARGV[3+i]   quantity of line i (integer 1..10000; the caller validates)

  Returns {code, line, available} or, for CustomerLimit, {code, line, limit, held, bought};
  code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  every line is held now (and counted for the customer, if any)
     AlreadyApplied   2  this reservation already holds every line (a retry): nothing changed
     Insufficient    -1  line `line` (1-based) asks for more than `available`: nothing changed
     NotLoaded       -2  line `line` has no counters (unknown SKU or Redis lost its data);
                         never read as zero or as plenty: nothing changed
     AlreadyFinished -3  this reservation (or this run) finished before: never hold it again
     HeldOtherwise   -7  line `line` holds another quantity for this id, or the id holds some of
                         the lines but not line `line` (another cart under the same id):
                         nothing changed
     CustomerLimit   -8  line `line`'s SKU has the limit `limit` per customer and the customer
                         holds `held` and has bought `bought` units of it, too many with this
                         line's quantity; or no customer was given (customerId ''): nothing changed
]]
--- @include "includes/customers"
--- @include "includes/decide"

if #KEYS % 4 ~= 0 then
  return redis.error_reply('hold: KEYS must be four per line (stock, holds, done, customers)')
end
local id, run, customer = ARGV[1], ARGV[1] .. '@' .. ARGV[2], ARGV[3]
local lines = #KEYS / 4
local todo, missing = {}, 0

for i = 1, lines do
  local stock, holds, done, customers = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local quantity = tonumber(ARGV[3 + i])
  if redis.call('ZSCORE', done, id) or redis.call('ZSCORE', done, run) then
    return {-3, i, 0}
  end
  local state = line_state(stock, customers, customer)
  if not state then
    return {-2, i, 0}
  end
  local held = redis.call('HGET', holds, id)
  if held then
    if tonumber(held) ~= quantity then
      return {-7, i, 0}
    end
  else
    local refusal = line_refusal(state, i, customer, quantity)
    if refusal then
      return refusal
    end
    missing = missing + 1
    todo[missing] = i
  end
end

if missing == 0 then
  return {2, 0, 0}
end
if missing < lines then
  -- Some lines held, others not: not a retry of this cart (a lost line comes back through the
  -- reconciler, from the reservation's lines in PostgreSQL).
  return {-7, todo[1], 0}
end
for _, i in ipairs(todo) do
  local quantity = tonumber(ARGV[3 + i])
  redis.call('HINCRBY', KEYS[4 * i - 3], 'reserved', quantity)
  redis.call('HSET', KEYS[4 * i - 2], id, quantity)
  note_hold(KEYS[4 * i], id, customer, quantity)
end
return {1, 0, 0}
