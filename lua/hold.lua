--[[
  hold: hold every line of one reservation, or none of them; on a SKU with a per-customer limit,
  only while the customer's held plus bought units stay within it (checked in this same step).
  Where each line is held is decided in the same step (includes/decide.lua's place(): the channel's
  locations in its strategy's order, or the line's pinned location), so it can never disagree
  with whether it can be.

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
    ARGV[4]     the channel's locations, comma-separated, in its order ('' for every level of
                each SKU, in the SKU's `locs` order)
    ARGV[5]     the channel's strategy: 'priority' or 'most-available' ('' for priority)
    ARGV[4+2i]  quantity of line i (integer 1..10000; the caller validates)
    ARGV[5+2i]  the location line i is pinned to ('' for none; the caller checks it is the
                channel's)

  Returns {code, line, available} or, for CustomerLimit, {code, line, limit, held, bought}; Applied
  and AlreadyApplied add each line's allocation, `loc=units,…` in the order its units were taken
  (so the caller records in PostgreSQL what Redis decided, also on a retry);
  code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied          1  every line is held now (and counted for the customer, if any)
     AlreadyApplied   2  this reservation already holds every line (a retry): nothing changed
     Insufficient    -1  line `line` (1-based) asks for more than `available` (through the
                         channel; for a pinned line, at its location): nothing changed
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
local channel = read_channel(ARGV[4], ARGV[5])
local lines = #KEYS / 4
local todo, missing, places = {}, 0, {}

for i = 1, lines do
  local stock, holds, done, customers = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local quantity = tonumber(ARGV[4 + 2 * i])
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
    local ids, units = place(stock, state, channel, quantity, ARGV[5 + 2 * i])
    if not ids then
      return { -1, i, units }
    end
    places[i] = { ids, units, state.spread }
    missing = missing + 1
    todo[missing] = i
  end
end

-- Each line's allocation, as the reply's tail: `loc=units,…`.
local function allocations()
  local reply = {}
  for i = 1, lines do
    local stock = KEYS[4 * i - 3]
    local ids, units = allocation_of(stock, id, tonumber(redis.call('HGET', KEYS[4 * i - 2], id)))
    reply[i] = format_allocation(ids, units)
  end
  return reply
end

if missing == 0 then
  return {2, 0, 0, unpack(allocations())}
end
local reply = {1, 0, 0}
if missing < lines then
  -- Some lines held, others not: not a retry of this cart (a lost line comes back through the
  -- reconciler, from the reservation's lines in PostgreSQL).
  return {-7, todo[1], 0}
end
for _, i in ipairs(todo) do
  local quantity = tonumber(ARGV[4 + 2 * i])
  reserve(KEYS[4 * i - 3], id, quantity, places[i][1], places[i][2], places[i][3])
  reply[3 + i] = format_allocation(places[i][1], places[i][2])
  redis.call('HSET', KEYS[4 * i - 2], id, quantity)
  note_hold(KEYS[4 * i], id, customer, quantity)
end
return reply
