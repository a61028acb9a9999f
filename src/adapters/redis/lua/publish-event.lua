-- publish-event: stamps a transient event with the group offset and publishes it, as one
-- step, so that it reaches watchers between the changes it came after and before.
--
-- KEYS[1] offset   STRING group offset counter (absent: 0)
-- ARGV[1] the group's shard channel
-- ARGV[2] event type as a JSON string
-- ARGV[3] timestamp in ms, decimal
-- ARGV[4] item id as a JSON string, or "" for a group-wide event
-- ARGV[5] data as JSON text
--
-- Returns the offset the event carries, as a decimal string.

local offset = redis.call('GET', KEYS[1]) or '0'
local message = table.concat({'e', offset, ARGV[2], ARGV[3], ARGV[4], ARGV[5]}, '\n')
redis.call('SPUBLISH', ARGV[1], message)
return offset
