-- commit: compare-and-set of one item, and everything a stored change entails, as one step.
-- Values are never decoded here: the JSON text from JavaScript is stored and passed on as is.
--
-- KEYS[1] items    HASH   item id -> "<revision>\n<updated_at_ms>\n<value JSON>"
-- KEYS[2] order    ZSET   item id scored by the offset that created it (insertion order)
-- KEYS[3] offset   STRING group offset counter; kept when the group empties so offsets never repeat
-- KEYS[4] history  LIST   last ARGV[6] change messages, oldest first, contiguous by offset
-- KEYS[5] expiry   ZSET   item id scored by when it expires (ms); only items that expire
-- ARGV[1] item id
-- ARGV[2] expected revision, decimal ("0": the item must not exist)
-- ARGV[3] "set" or "delete"
-- ARGV[4] new value as JSON text ("" for a delete)
-- ARGV[5] timestamp in ms, decimal
-- ARGV[6] history limit (0 keeps none)
-- ARGV[7] item id as a JSON string, for the change message
-- ARGV[8] the group's shard channel
-- ARGV[9] the offset that created the item as expected, decimal ("": not checked); a
--         re-created item restarts at revision 1, so the revision alone may match a newer one
-- ARGV[10] when the written item expires, ms, decimal ("": never; a write without it
--          clears an earlier expiry)
-- ARGV[11] "1" for the delete of an expired item (its change message says so), else ""
--
-- Returns {0, current revision} when the revision or the incarnation differs (or a delete finds no item);
-- otherwise {1, offset, type, revision, old value JSON or "", transition, old updated_at_ms or "",
-- created offset}, where transition is "created" (first item of an empty group), "emptied"
-- (last item gone) or "", and the created offset is that of the changed incarnation (this
-- change's own offset for a create).

local items, order, offset_key, history, expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local item_id, expected, op, value, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local history_limit, item_id_json, channel, incarnation = tonumber(ARGV[6]), ARGV[7], ARGV[8], ARGV[9]
local expires_at, expired = ARGV[10], ARGV[11]

local stored = redis.call('HGET', items, item_id)
local revision, old_updated_at, old_value = '0', '', ''
if stored then
  local first = string.find(stored, '\n', 1, true)
  local second = string.find(stored, '\n', first + 1, true)
  revision = string.sub(stored, 1, first - 1)
  old_updated_at = string.sub(stored, first + 1, second - 1)
  old_value = string.sub(stored, second + 1)
end
if revision ~= expected or (op == 'delete' and not stored) then
  return {0, revision}
end
local created_at
if stored then created_at = tonumber(redis.call('ZSCORE', order, item_id)) end
if stored and incarnation ~= '' and created_at ~= tonumber(incarnation) then
  return {0, revision}
end

-- '%.0f' prints every integer below 2^53 exactly; tostring would switch to exponents.
local offset = string.format('%.0f', redis.call('INCR', offset_key))
local created_offset = offset
if stored then created_offset = string.format('%.0f', created_at) end
local change_type, new_revision, data, message_old
if op == 'delete' then
  redis.call('HDEL', items, item_id)
  redis.call('ZREM', order, item_id)
  redis.call('ZREM', expiry, item_id)
  change_type, new_revision, data, message_old = 'delete', revision, old_value, ''
else
  new_revision = string.format('%.0f', tonumber(revision) + 1)
  redis.call('HSET', items, item_id, new_revision .. '\n' .. now .. '\n' .. value)
  if expires_at == '' then
    redis.call('ZREM', expiry, item_id)
  else
    redis.call('ZADD', expiry, expires_at, item_id)
  end
  if stored then
    change_type = 'update'
  else
    change_type = 'create'
    redis.call('ZADD', order, offset, item_id)
  end
  data, message_old = value, old_value
end

local fields = {'c', offset, change_type, new_revision, now, item_id_json, data, message_old, old_updated_at, created_offset}
if expired == '1' then fields[#fields + 1] = '1' end
local message = table.concat(fields, '\n')
local size = redis.call('HLEN', items)
local transition = ''
if size == 0 then
  -- An emptied group keeps only its offset counter.
  redis.call('DEL', history, order)
  transition = 'emptied'
else
  if change_type == 'create' and size == 1 then transition = 'created' end
  if history_limit > 0 then
    if redis.call('RPUSH', history, message) > history_limit then
      redis.call('LTRIM', history, -history_limit, -1)
    end
  end
end
redis.call('SPUBLISH', channel, message)
return {1, offset, change_type, new_revision, old_value, transition, old_updated_at, created_offset}
