--[[
  levels: a SKU's stock per location, inside its own stock hash (layout: src/stock/redis/keys.ts),
  so one script still decides a SKU on its one slot. Lazy: a SKU that only ever had stock at
  `default` has no `locs` field, and its one level's figures are `total` and `reserved`. Once a
  write names another location, `spread` writes the level `default` out (`t:default`,
  `r:default`), and from then on every level has `t:<loc>` and `r:<loc>`; `total` and `reserved`
  stay the sums, so every SKU-wide check reads them as before. A hold's allocation is the field
  `a:<reservationId>` = `loc=units,loc=units` (the order its units were taken), written only on a
  SKU with `locs`; a hold without one is at `default` whole. `lv` repeats every level's figures in
  one field (`loc=total/reserved,…`, in `locs` order) for the reads through a channel, which would
  otherwise take two fields per location: every function here that changes a level rewrites it
  (write_lv), and so must any script that writes `t:`/`r:` itself (load, rebase).
]]

-- Splits `loc=units,loc=units` into ids and units (an empty string gives none).
local function parse_allocation(spec)
  local ids, units = {}, {}
  for loc, n in string.gmatch(spec or '', '([^,=]+)=(%d+)') do
    ids[#ids + 1] = loc
    units[#units + 1] = tonumber(n)
  end
  return ids, units
end

local function format_allocation(ids, units)
  local parts = {}
  for i = 1, #ids do
    parts[i] = ids[i] .. '=' .. units[i]
  end
  return table.concat(parts, ',')
end

-- Rewrites `lv` from the SKU's `t:`/`r:` fields (nothing on a SKU without `locs`).
local function write_lv(stock)
  local locs = redis.call('HGET', stock, 'locs')
  if not locs then
    return
  end
  local ids, fields = {}, {}
  for loc in string.gmatch(locs, '[^,]+') do
    ids[#ids + 1] = loc
    fields[#fields + 1] = 't:' .. loc
    fields[#fields + 1] = 'r:' .. loc
  end
  local v = redis.call('HMGET', stock, unpack(fields))
  local parts = {}
  for i, loc in ipairs(ids) do
    parts[i] = loc .. '=' .. (v[2 * i - 1] or '0') .. '/' .. (v[2 * i] or '0')
  end
  redis.call('HSET', stock, 'lv', table.concat(parts, ','))
end

-- The SKU's levels: ids (in `locs` order), total and reserved per id (maps), and whether it has
-- `locs`. Without counters: nil.
local function levels(stock)
  local c = redis.call('HMGET', stock, 'total', 'reserved', 'locs')
  if not c[1] then
    return nil
  end
  if not c[3] then
    return { 'default' }, { default = tonumber(c[1]) }, { default = tonumber(c[2] or '0') }, false
  end
  local ids, fields = {}, {}
  for loc in string.gmatch(c[3], '[^,]+') do
    ids[#ids + 1] = loc
    fields[#fields + 1] = 't:' .. loc
    fields[#fields + 1] = 'r:' .. loc
  end
  local v = redis.call('HMGET', stock, unpack(fields))
  local t, r = {}, {}
  for i, loc in ipairs(ids) do
    t[loc] = tonumber(v[2 * i - 1] or '0')
    r[loc] = tonumber(v[2 * i] or '0')
  end
  return ids, t, r, true
end

-- Makes sure the SKU has the level `loc`, writing the lazy layout out first when needed (its
-- callers change a figure next, and rewrite `lv` after it).
local function ensure_level(stock, loc)
  local c = redis.call('HMGET', stock, 'total', 'reserved', 'locs')
  local locs = c[3]
  if not locs then
    if loc == 'default' then
      return
    end
    redis.call('HSET', stock, 'locs', 'default', 't:default', c[1] or '0', 'r:default', c[2] or '0')
    locs = 'default'
  end
  for id in string.gmatch(locs, '[^,]+') do
    if id == loc then
      return
    end
  end
  redis.call('HSET', stock, 'locs', locs .. ',' .. loc, 't:' .. loc, 0, 'r:' .. loc, 0)
end

-- Whether the SKU keeps levels (`locs`).
local function has_levels(stock)
  return redis.call('HEXISTS', stock, 'locs') == 1
end

-- Adds `delta` to a level's `field` ('t' or 'r') and to the SKU's sum (`total` or `reserved`).
local function add_to_level(stock, field, loc, delta)
  local sum = field == 't' and 'total' or 'reserved'
  if loc ~= 'default' or has_levels(stock) then
    ensure_level(stock, loc)
    redis.call('HINCRBY', stock, field .. ':' .. loc, delta)
    write_lv(stock)
  end
  return redis.call('HINCRBY', stock, sum, delta)
end

-- A hold's allocation (ids, units): its `a:` field, or `default` whole.
local function allocation_of(stock, id, held)
  local spec = redis.call('HGET', stock, 'a:' .. id)
  if spec then
    return parse_allocation(spec)
  end
  return { 'default' }, { held }
end

-- Takes a hold's units out of `reserved` (and each of its levels'), dropping its allocation.
local function unreserve(stock, id, held)
  if has_levels(stock) then
    local ids, units = allocation_of(stock, id, held)
    for i, loc in ipairs(ids) do
      redis.call('HINCRBY', stock, 'r:' .. loc, -units[i])
    end
    redis.call('HDEL', stock, 'a:' .. id)
    write_lv(stock)
  end
  redis.call('HINCRBY', stock, 'reserved', -held)
end

-- Puts a hold's units into `reserved` and, with an allocation, into each level's (writing the
-- allocation). `ids`/`units` nil: at `default` whole. `spread`: whether the SKU has `locs`
-- (nil: read it).
local function reserve(stock, id, held, ids, units, spread)
  if spread == nil then
    spread = has_levels(stock)
  end
  if ids and (#ids > 1 or ids[1] ~= 'default' or spread) then
    for i, loc in ipairs(ids) do
      -- A level the SKU has already (an allocation is only ever made where units are) needs no
      -- layout written out; only a hold loaded at a location new to the SKU does.
      if not spread then
        ensure_level(stock, loc)
      end
      redis.call('HINCRBY', stock, 'r:' .. loc, units[i])
    end
    redis.call('HSET', stock, 'a:' .. id, format_allocation(ids, units))
    write_lv(stock)
  elseif spread then
    redis.call('HINCRBY', stock, 'r:default', held)
    write_lv(stock)
  end
  redis.call('HINCRBY', stock, 'reserved', held)
end

-- Makes `reserved` the sum of the holds and, on a SKU with levels, each `r:<loc>` the sum of the
-- holds' allocations there (a hold without one at `default`), when `write`; returns the sum, the
-- sums per location, and whether anything differed from what the hash had.
local function recount(stock, holds, write)
  local sum, per = 0, {}
  local all = redis.call('HGETALL', holds)
  local spread = has_levels(stock)
  for i = 1, #all, 2 do
    local held = tonumber(all[i + 1])
    sum = sum + held
    if spread then
      local ids, units = allocation_of(stock, all[i], held)
      for k, loc in ipairs(ids) do
        per[loc] = (per[loc] or 0) + units[k]
      end
    end
  end
  local differs = tonumber(redis.call('HGET', stock, 'reserved') or '0') ~= sum
  if spread then
    local ids, _, r = levels(stock)
    for _, loc in ipairs(ids) do
      differs = differs or r[loc] ~= (per[loc] or 0)
      if write then
        redis.call('HSET', stock, 'r:' .. loc, per[loc] or 0)
      end
    end
    if write then
      write_lv(stock)
    end
  end
  if write then
    redis.call('HSET', stock, 'reserved', sum)
  end
  return sum, per, differs
end
