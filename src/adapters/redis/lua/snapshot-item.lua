-- snapshot-item: one item with the group offset it reflects, read as one step.
--
-- KEYS[1] items    HASH   item id -> stored item record
-- KEYS[2] order    ZSET   item id scored by the offset that created it
-- KEYS[3] offset   STRING group offset counter (absent: 0)
-- KEYS[4] expiry   ZSET   item id scored by when it expires (ms); only items that expire
-- ARGV[1] the item id
--
-- Returns {offset} when the item does not exist, otherwise {offset, record, created offset,
-- expires at}, where expires at is the expiry in ms or "" for an item that never expires.

local result = {redis.call('GET', KEYS[3]) or '0'}
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record then
  result[2] = record
  result[3] = redis.call('ZSCORE', KEYS[2], ARGV[1])
  result[4] = redis.call('ZSCORE', KEYS[4], ARGV[1]) or ''
end
return result
