--[[
  precheck: what hold.lua would decide for a cart now, changing nothing (read only), so the API
  can refuse a cart that cannot be held without starting a workflow or touching PostgreSQL (a
  flash sale is mostly such refusals), and can admit into Temporal only as many buyers as there
  are units (src/api/reservations/admission.ts). The rule is hold.lua's own (includes/decide.lua); the hold in
  the workflow still decides.

  KEYS, four per line i, as hold.lua takes them (layout: src/stock/redis/keys.ts):
    KEYS[4i-3] item:{SKU}:stock, KEYS[4i-2] item:{SKU}:holds, KEYS[4i-1] item:{SKU}:done,
    KEYS[4i] item:{SKU}:customers
  ARGV:
    ARGV[1]     reservationId ('' when the client named none)
    ARGV[2]     customerId ('' for none)
    ARGV[3]     the channel's locations, ARGV[4] its strategy (as hold.lua takes them)
    ARGV[3+2i]  quantity of line i, ARGV[4+2i] its pinned location ('' for none)

  Returns {code, line, f1, f2, f3, available_1, allowance_1, ..., available_n, allowance_n}:
  per line, the units available now (through the channel; a pinned line's at its location) and the units the customer may still take of a SKU limited
  per customer (nil on a SKU without a limit, or without counters); code is a ScriptCode
  (src/stock/redis/scripts.ts):
     Applied          1  hold.lua would hold the cart now
     AlreadyApplied   2  a repeat: the reservation holds, or finished on, one of the lines (its
                         workflow answers it, whatever the stock says now)
     Insufficient    -1  line `line` asks for more than f1 available
     NotLoaded       -2  line `line` has no counters
     CustomerLimit   -8  line `line`: limit f1, the customer holds f2 and bought f3 (no customer: 0, 0)
  The first refusal in line order wins, as in hold.lua.
]]
--- @include "includes/decide"

if #KEYS % 4 ~= 0 then
  return redis.error_reply('precheck: KEYS must be four per line (stock, holds, done, customers)')
end
local id, customer = ARGV[1], ARGV[2]
local channel = read_channel(ARGV[3], ARGV[4])
local lines = #KEYS / 4
local verdict = { 1, 0, 0, 0, 0 }
local figures = {}

for i = 1, lines do
  local stock, holds, done, customers = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local state = line_state(stock, customers, customer)
  if id ~= '' and verdict[1] ~= 2 and (redis.call('HEXISTS', holds, id) == 1 or redis.call('ZSCORE', done, id)) then
    verdict = { 2, i, 0, 0, 0 }
  end
  if not state then
    if verdict[1] == 1 then
      verdict = { -2, i, 0, 0, 0 }
    end
    figures[2 * i - 1], figures[2 * i] = 0, false
  else
    if verdict[1] == 1 then
      local quantity, pinned = tonumber(ARGV[3 + 2 * i]), ARGV[4 + 2 * i]
      local refusal = line_refusal(state, i, customer, quantity)
      if refusal then
        verdict = { refusal[1], i, refusal[3], refusal[4] or 0, refusal[5] or 0 }
      else
        local ids, short = place(stock, state, channel, quantity, pinned)
        if not ids then
          verdict = { -1, i, short, 0, 0 }
        end
      end
    end
    figures[2 * i - 1] = channel_available(stock, state, channel, ARGV[4 + 2 * i])
    figures[2 * i] = state.limit and (state.limit - state.held - state.bought) or false
  end
end

for i = 1, 2 * lines do
  verdict[5 + i] = figures[i]
end
return verdict
