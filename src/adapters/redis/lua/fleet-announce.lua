-- fleet-announce: records what one instance hosts (the worker functions and triggers of
-- the workers connected to it) and that it is alive, drops the entries of instances that
-- stopped renewing theirs, and announces a change of what the fleet hosts, as one step.
-- Times are read from the Redis clock, so the clocks of the instances do not matter.
--
-- KEYS[1] instances  ZSET  instance id -> when its entry expires, ms
-- KEYS[2] hosted     HASH  instance id -> JSON {"functions": [ids], "triggers": [records]}
-- ARGV[1] the instance id
-- ARGV[2] how long the entry lives without renewal, ms ("0": the instance leaves now)
-- ARGV[3] what the instance hosts, as JSON in a canonical order ("": nothing; then it
--         keeps no entry)
-- ARGV[4] the registrations' change channel
--
-- Returns 1 when a change was announced, else 0.

local instances, hosted = KEYS[1], KEYS[2]
local id, ttl, entry, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- What the other instances saw of this one: nothing once its entry had expired.
local before = ''
local expiry = redis.call('ZSCORE', instances, id)
if expiry and tonumber(expiry) > now then before = redis.call('HGET', hosted, id) or '' end

-- Only instances that host something have an entry, so every expired one took functions
-- or triggers with it.
local changed = false
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', instances, '-inf', string.format('%.0f', now))) do
  redis.call('ZREM', instances, gone)
  redis.call('HDEL', hosted, gone)
  if gone ~= id then changed = true end
end

if ttl > 0 and entry ~= '' then
  redis.call('ZADD', instances, string.format('%.0f', now + ttl), id)
  redis.call('HSET', hosted, id, entry)
else
  redis.call('ZREM', instances, id)
  redis.call('HDEL', hosted, id)
  entry = ''
end
if entry ~= before then changed = true end
if changed then redis.call('SPUBLISH', channel, 'changed') end
return changed and 1 or 0
