-- changes-since: the retained change messages after an offset, read as one step.
--
-- KEYS[1] offset   STRING group offset counter (absent: 0)
-- KEYS[2] history  LIST   last change messages, oldest first, contiguous by offset
-- ARGV[1] the offset after which changes are wanted, decimal
--
-- Returns the messages in offset order, or nil when the history no longer holds all
-- of them or the offset is ahead of the group. The history ends at the current offset
-- (or is empty), so its first offset is current - length + 1.

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
if after > current then return false end
local missing = current - after
if missing == 0 then return {} end
local length = redis.call('LLEN', KEYS[2])
if missing > length then return false end
return redis.call('LRANGE', KEYS[2], length - missing, -1)
