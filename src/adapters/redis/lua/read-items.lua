-- read-items: one page of a group's items in insertion order, with the group offset it
-- reflects and whether more items follow, read as one step.
--
-- KEYS[1] items    HASH   item id -> "<revision>\n<updated_at_ms>\n<value JSON>"
-- KEYS[2] order    ZSET   item id scored by the offset that created it (insertion order)
-- KEYS[3] offset   STRING group offset counter (absent: 0)
-- KEYS[4] expiry   ZSET   item id scored by when it expires (ms); only items that expire
-- ARGV[1] only items created after this offset, decimal ("0" for the first page)
-- ARGV[2] most items in the page, decimal, at least 1
-- ARGV[3] the page ends with the item that brings its size to this or beyond, decimal;
--         an item's size is the byte length of its value JSON plus that of its id, and
--         the first item always comes
--
-- Returns {offset, more (0 or 1), item id, record, created offset, expires at, item id, ...}, four
-- entries per item, where expires at is the expiry in ms or "" for an item that never expires.
-- A missing group is {its offset or "0", 0}.

local items, order, expiry = KEYS[1], KEYS[2], KEYS[4]
local offset = redis.call('GET', KEYS[3]) or '0'
local max_items, max_bytes = tonumber(ARGV[2]), tonumber(ARGV[3])

-- Scores are distinct (each is the offset of one create), so the last score read is
-- an exact cursor. Items are read in bounded batches: a large maxItems with a small
-- maxBytes does not read the whole group.
local function after(cursor, count)
  return redis.call('ZRANGE', order, '(' .. cursor, '+inf', 'BYSCORE', 'LIMIT', 0, count, 'WITHSCORES')
end

local result = {offset, 0}
local cursor, count, bytes = ARGV[1], 0, 0
-- Batches start small, as a page of large values may end after a few items, and grow.
local batch = 16
while count < max_items and (count == 0 or bytes < max_bytes) do
  local scored = after(cursor, math.min(max_items - count, batch))
  batch = math.min(batch * 2, 512)
  if #scored == 0 then break end
  local ids = {}
  for i = 1, #scored, 2 do ids[#ids + 1] = scored[i] end
  -- One HMGET per batch: a call from Lua costs more than the lookup itself.
  local records = redis.call('HMGET', items, unpack(ids))
  -- Most groups hold no expiring item: one EXISTS then spares a ZSCORE per item.
  local any_expiry = redis.call('EXISTS', expiry) == 1
  for i = 1, #scored, 2 do
    local item_id, created = scored[i], scored[i + 1]
    -- order and items are written by the same scripts, so the record exists.
    local record = records[(i + 1) / 2]
    result[#result + 1] = item_id
    result[#result + 1] = record
    result[#result + 1] = created
    result[#result + 1] = any_expiry and redis.call('ZSCORE', expiry, item_id) or ''
    local first = string.find(record, '\n', 1, true)
    local second = string.find(record, '\n', first + 1, true)
    count = count + 1
    bytes = bytes + (#record - second) + #item_id
    cursor = created
    if bytes >= max_bytes then break end
  end
end
if #after(cursor, 1) > 0 then result[2] = 1 end
return result
