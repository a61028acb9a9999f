-- fleet-hosted: the worker functions of every instance whose entry has not expired, read
-- as one step on the Redis clock.
--
-- KEYS[1] instances  ZSET  instance id -> when its entry expires, ms
-- KEYS[2] hosted     HASH  instance id -> JSON array of the worker function ids it hosts
--
-- Returns {instance id, function ids JSON, instance id, function ids JSON, ...}.

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local result = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')) do
  local functions = redis.call('HGET', KEYS[2], id)
  if functions then
    result[#result + 1] = id
    result[#result + 1] = functions
  end
end
return result
