-- snapshot: a group's items in insertion order (or its one item) with the offset they
-- reflect, read as one step.
--
-- KEYS[1] items    HASH   item id -> stored item record
-- KEYS[2] order    ZSET   item id scored by the offset that created it
-- KEYS[3] offset   STRING group offset counter (absent: 0)
-- ARGV[1] (optional) one item id
--
-- Returns {offset, item id, record, created offset, item id, record, created offset, ...}.

local items, order = KEYS[1], KEYS[2]
local result = {redis.call('GET', KEYS[3]) or '0'}
local scored
if ARGV[1] then
  scored = {ARGV[1], redis.call('ZSCORE', order, ARGV[1])}
else
  scored = redis.call('ZRANGE', order, 0, -1, 'WITHSCORES')
end
for i = 1, #scored, 2 do
  local record = redis.call('HGET', items, scored[i])
  if record then
    result[#result + 1] = scored[i]
    result[#result + 1] = record
    result[#result + 1] = scored[i + 1]
  end
end
return result
