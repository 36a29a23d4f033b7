--[[
  allocate: which locations serve one line (contract v3, "Channels and allocation"), decided from
  the figures the same script reads, so the choice of where can never disagree with whether.
  Pure: reads and writes no key. The hold will call it once per line, with the per-location
  figures of the line's SKU (docs/DESIGN.md, "Locations and channels").

  allocate(locations, available, strategy, quantity, pinned)
    locations  location ids in the channel's order (1..50)
    available  units available at each, in the same order (integers; below 0 counts as 0)
    strategy   'priority' (the channel's order) or 'most-available' (most available first, ties
               in the channel's order)
    quantity   units the line asks for (>= 1)
    pinned     a location id the line must be held at, or '' for none (the caller checks that it
               is one of the channel's)
  Returns ids, units: the allocation in the order its units are taken (a line goes whole to the
  first location in strategy order that has all of it; only when none has does it split, filling
  the locations in that order), or nil, short when the line cannot be served, with short the
  units it could have had (the pinned location's available, or the sum over the channel).
]]
local function allocate(locations, available, strategy, quantity, pinned)
  local n = #locations
  local function units(i)
    local a = available[i]
    if a < 0 then
      return 0
    end
    return a
  end
  if pinned ~= '' then
    for i = 1, n do
      if locations[i] == pinned then
        if units(i) >= quantity then
          return { pinned }, { quantity }
        end
        return nil, units(i)
      end
    end
    return nil, 0
  end
  local order = {}
  for i = 1, n do
    order[i] = i
  end
  if strategy == 'most-available' then
    -- Lua's sort is not stable: the channel position breaks ties.
    table.sort(order, function(a, b)
      local ua, ub = units(a), units(b)
      if ua ~= ub then
        return ua > ub
      end
      return a < b
    end)
  end
  local sum = 0
  for _, i in ipairs(order) do
    if units(i) >= quantity then
      return { locations[i] }, { quantity }
    end
    sum = sum + units(i)
  end
  if sum < quantity then
    return nil, sum
  end
  local ids, taken, left = {}, {}, quantity
  for _, i in ipairs(order) do
    local take = math.min(units(i), left)
    if take > 0 then
      ids[#ids + 1] = locations[i]
      taken[#taken + 1] = take
      left = left - take
    end
    if left == 0 then
      break
    end
  end
  return ids, taken
end
