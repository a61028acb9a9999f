-- snapshot: a group's items in insertion order (or its one item) with the offset they
-- reflect, read as one step.
--
-- KEYS[1] items    HASH   item id -> stored item record
-- KEYS[2] order    ZSET   item id scored by the offset that created it
-- KEYS[3] offset   STRING group offset counter (absent: 0)
-- ARGV[1] (optional) one item id
--
-- Returns {offset, item id, record, item id, record, ...}.

local items, order = KEYS[1], KEYS[2]
local result = {redis.call('GET', KEYS[3]) or '0'}
local ids
if ARGV[1] then ids = {ARGV[1]} else ids = redis.call('ZRANGE', order, 0, -1) end
for _, item_id in ipairs(ids) do
  local record = redis.call('HGET', items, item_id)
  if record then
    result[#result + 1] = item_id
    result[#result + 1] = record
  end
end
return result
