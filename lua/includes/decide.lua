--[[
  decide: the rule of a hold, one copy for the script that applies it (hold.lua) and the one that
  only reports it (precheck.lua): whether one more line of a cart fits a SKU now. Keys: see
  src/stock/redis/keys.ts. Reply codes: ScriptCode (src/stock/redis/scripts.ts).
]]
--- @include "includes/levels"
--- @include "includes/allocate"

-- A line's figures: {total, reserved, limit, held, bought} (limit nil on a SKU without
-- maxPerCustomer; held and bought are the customer's, read only when there is a limit and a
-- customer), or nil when the SKU has no counters (unknown, or Redis lost its data).
local function line_state(stock, customers, customer)
  local c = redis.call('HMGET', stock, 'total', 'reserved', 'maxPerCustomer', 'locs')
  if not c[1] then
    return nil
  end
  local s = { total = tonumber(c[1]), reserved = tonumber(c[2] or '0'), limit = c[3] and tonumber(c[3]), held = 0, bought = 0,
              spread = c[4] ~= false and c[4] ~= nil }
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
  return nil
end

-- The channel of a cart, from ARGV: its location ids ('' for every level of each SKU, in the
-- SKU's `locs` order) and its strategy.
local function read_channel(spec, strategy)
  local ids = {}
  local default = spec == nil or spec == ''
  for loc in string.gmatch(spec or '', '[^,]+') do
    ids[#ids + 1] = loc
    default = default or loc == 'default'
  end
  return { ids = ids, strategy = strategy ~= '' and strategy or 'priority', default = default }
end

-- Where `quantity` units of a line would be held now (contract v3, "Channels and allocation"):
-- ids, units in the order taken; or nil, and the units the line could have had (the channel's
-- available, or the pinned location's). `s` is line_state's.
local function place(stock, s, channel, quantity, pinned)
  if not s.spread and (pinned == nil or pinned == '' or pinned == 'default') then
    -- A SKU whose one level is `default` (every v2 SKU, and a flash sale's): the channel serves it
    -- from there or not at all, whatever its strategy; what allocate would answer, without the
    -- tables (the path of every refusal in a storm).
    local available = channel.default and math.max(0, s.total - s.reserved) or 0
    if available >= quantity then
      return { 'default' }, { quantity }
    end
    return nil, available
  end
  local ids, t, r
  if s.spread then
    ids, t, r = levels(stock)
  else
    ids, t, r = { 'default' }, { default = s.total }, { default = s.reserved }
  end
  local list = #channel.ids > 0 and channel.ids or ids
  local available = {}
  for k, loc in ipairs(list) do
    available[k] = t[loc] and (t[loc] - r[loc]) or 0
  end
  return allocate(list, available, channel.strategy, quantity, pinned or '')
end

-- What a line could have through the channel now (pinned: that location's): never below 0.
local function channel_available(stock, s, channel, pinned)
  local ids, short = place(stock, s, channel, 2147483647, pinned)
  return short or 0
end
