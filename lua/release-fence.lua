--[[
  release-fence: drop a fence (the rebuild's, stockhold:rebuild) only if it is still the caller's,
  so a process whose fence ran out never drops the one another process has taken since.

  KEYS:
    KEYS[1]  the fence key (src/stock/redis/keys.ts)
  ARGV:
    ARGV[1]  the token the caller set it to

  Returns {code, 0, 0}; code is a ScriptCode (src/stock/redis/scripts.ts):
     Applied    1  the fence was the caller's and is gone
     Unchanged  0  it was not the caller's (or gone already): nothing changed
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1, 0, 0}
end
return {0, 0, 0}
