-- fleet-hosted: what every instance whose entry has not expired hosts (the worker functions
-- and triggers of its workers), read as one step on the Redis clock.
--
-- KEYS[1] instances  ZSET  instance id -> when its entry expires, ms
-- KEYS[2] hosted     HASH  instance id -> JSON {"functions": [ids], "triggers": [records]}
--
-- Returns {instance id, entry JSON, instance id, entry JSON, ...}.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local result = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')) do
  local entry = redis.call('HGET', KEYS[2], id)
  if entry then
    result[#result + 1] = id
    result[#result + 1] = entry
  end
end
return result
