-- commit: a batch of writes to one group (compare-and-set of each, all or nothing) and
-- everything the stored changes entail, plus the record of the request that made it, as one step.
-- Values are never decoded here: the JSON text from JavaScript is stored and passed on as is.
--
-- KEYS[1] items     HASH   item id -> "<revision>\n<updated_at_ms>\n<value JSON>"
-- KEYS[2] order     ZSET   item id scored by the offset that created it (insertion order)
-- KEYS[3] offset    STRING group offset counter; kept when the group empties so offsets never repeat
-- KEYS[4] history   LIST   last ARGV[2] change messages, oldest first, contiguous by offset
-- KEYS[5] requests  HASH   request id -> "<offset after its commit>\n<expires_at_ms>\n<fingerprint>\n<response>"
-- KEYS[6] request expiry  ZSET  request id scored by its expires_at_ms
-- KEYS[7] expiry    ZSET   item id scored by when the item expires (ms); only items that expire
-- KEYS[8..] outbox  STREAM the pending calls of an at-least-once trigger, one key per trigger the
--           batch fires; each entry: s = stream name, g = group id, m = the change message
-- ARGV[1] timestamp in ms, decimal (also "now" for the request records' expiry)
-- ARGV[2] history limit (0 keeps none)
-- ARGV[3] the group's shard channel
-- ARGV[4] request id ("": the batch records no request)
-- ARGV[5] the request's expires_at_ms, decimal
-- ARGV[6] the request's fingerprint (no newline)
-- ARGV[7] the request's response (JSON text, no raw newline)
-- ARGV[8] most request records the group keeps
-- ARGV[9] most entries an outbox stream holds (its trigger's bound)
-- ARGV[10] stream name (for the outbox entries)
-- ARGV[11] group id (for the outbox entries)
-- ARGV[12..] ten per write, in order:
--   item id; expected revision, decimal ("0": the item must not exist); the offset that
--   created the item as expected, decimal ("": not checked; a re-created item restarts at
--   revision 1, so the revision alone may match a newer one); "set" or "delete"; new value
--   as JSON text ("" for a delete); item id as a JSON string, for the change message; the
--   update ops that made the new value, as JSON text ("": none), which an update's change
--   message carries as its last line, for delta subscribers; when the written item expires,
--   ms, decimal ("": never, and a write without it clears an earlier expiry); "1" for the
--   delete of an expired item, whose change message then ends with a line "1", else ""; and
--   the outboxes that get a call for the change, as the numbers of their KEYS separated by
--   spaces ("": none)
--
-- Returns {2, record} when the group remembers a live request with the id (nothing written);
-- {0, index, current revision} when the write at index (1-based) fails its check against the
-- item as the writes before it in the batch left it (nothing written); {3, key number} when that
-- outbox cannot take the batch's calls (nothing written); otherwise
-- {1, transition, group offset after the batch, then per write: offset, type, revision, old value JSON or "",
-- old updated_at_ms or "", created offset}, where transition is "created" (an empty group got
-- items), "emptied" (the batch left the group empty) or "", and the created offset is that
-- of the changed incarnation (the change's own offset for a create).

local items, order, offset_key, history, requests, request_expiry = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local expiry = KEYS[7]
local now, history_limit, channel = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local request_id, request_expires, fingerprint, response, max_requests = ARGV[4], ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local max_outbox, stream_name, group_id = tonumber(ARGV[9]), ARGV[10], ARGV[11]
local first_write = 12
local per_write = 10
local count = (#ARGV - first_write + 1) / per_write

if request_id ~= '' then
  local known = redis.call('HGET', requests, request_id)
  if known then
    local first = string.find(known, '\n', 1, true)
    local second = string.find(known, '\n', first + 1, true)
    if tonumber(string.sub(known, first + 1, second - 1)) > tonumber(now) then return {2, known} end
  end
end

-- Every check first, against the items as the earlier writes of the batch leave them.
local seen = {}
for i = 0, count - 1 do
  local base = first_write + i * per_write
  local item_id, expected, incarnation, op = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local state = seen[item_id]
  if state == nil then
    local stored = redis.call('HGET', items, item_id)
    if stored then
      local cut = string.find(stored, '\n', 1, true)
      state = {exists = true, revision = tonumber(string.sub(stored, 1, cut - 1)), created = tonumber(redis.call('ZSCORE', order, item_id))}
    else
      state = {exists = false, revision = 0, created = -1}
    end
  end
  if state.revision ~= tonumber(expected) or (op == 'delete' and not state.exists) then
    return {0, i + 1, string.format('%.0f', state.revision)}
  end
  if state.exists and incarnation ~= '' and state.created ~= tonumber(incarnation) then
    return {0, i + 1, string.format('%.0f', state.revision)}
  end
  if op == 'delete' then
    seen[item_id] = {exists = false, revision = 0, created = -1}
  elseif state.exists then
    seen[item_id] = {exists = true, revision = state.revision + 1, created = state.created}
  else
    -- Created by this batch: its offset is not known yet, and no write of the batch can expect one.
    seen[item_id] = {exists = true, revision = 1, created = -1}
  end
end

-- The outboxes must take every call of the batch, or nothing is written.
local additions = {}
for i = 0, count - 1 do
  for key in string.gmatch(ARGV[first_write + i * per_write + 9], '%d+') do
    local index = tonumber(key)
    additions[index] = (additions[index] or 0) + 1
  end
end
for index, added in pairs(additions) do
  if redis.call('XLEN', KEYS[index]) + added > max_outbox then return {3, index} end
end

local size_before = redis.call('HLEN', items)
local reply = {1, '', ''}
local offset
for i = 0, count - 1 do
  local base = first_write + i * per_write
  local item_id, op, value, item_id_json, ops = ARGV[base], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5], ARGV[base + 6]
  local expires_at, expired = ARGV[base + 7], ARGV[base + 8]
  local stored = redis.call('HGET', items, item_id)
  local revision, old_updated_at, old_value = '0', '', ''
  if stored then
    local first = string.find(stored, '\n', 1, true)
    local second = string.find(stored, '\n', first + 1, true)
    revision = string.sub(stored, 1, first - 1)
    old_updated_at = string.sub(stored, first + 1, second - 1)
    old_value = string.sub(stored, second + 1)
  end
  -- '%.0f' prints every integer below 2^53 exactly; tostring would switch to exponents.
  offset = string.format('%.0f', redis.call('INCR', offset_key))
  local created_offset = offset
  if stored then created_offset = string.format('%.0f', tonumber(redis.call('ZSCORE', order, item_id))) end
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

  local message = table.concat({'c', offset, change_type, new_revision, now, item_id_json, data, message_old, old_updated_at, created_offset}, '\n')
  if ops ~= '' and change_type == 'update' then message = message .. '\n' .. ops end
  if expired == '1' and change_type == 'delete' then message = message .. '\n1' end
  if redis.call('HLEN', items) == 0 then
    -- An emptied group keeps only its offset counter.
    redis.call('DEL', history, order)
  elseif history_limit > 0 then
    if redis.call('RPUSH', history, message) > history_limit then
      redis.call('LTRIM', history, -history_limit, -1)
    end
  end
  redis.call('SPUBLISH', channel, message)
  for key in string.gmatch(ARGV[base + 9], '%d+') do
    redis.call('XADD', KEYS[tonumber(key)], '*', 's', stream_name, 'g', group_id, 'm', message)
  end
  local at = #reply
  reply[at + 1], reply[at + 2], reply[at + 3], reply[at + 4], reply[at + 5], reply[at + 6] =
    offset, change_type, new_revision, old_value, old_updated_at, created_offset
end

local size_after = redis.call('HLEN', items)
if size_after > 0 and size_before == 0 then
  reply[2] = 'created'
elseif size_after == 0 and count > 0 then
  reply[2] = 'emptied'
end

if offset == nil then offset = string.format('%.0f', tonumber(redis.call('GET', offset_key) or '0')) end
reply[3] = offset

if request_id ~= '' then
  -- Expired records go first, then the oldest beyond the bound.
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', request_expiry, '-inf', now)) do redis.call('HDEL', requests, id) end
  redis.call('ZREMRANGEBYSCORE', request_expiry, '-inf', now)
  redis.call('HSET', requests, request_id, table.concat({offset, request_expires, fingerprint, response}, '\n'))
  redis.call('ZADD', request_expiry, request_expires, request_id)
  local excess = redis.call('ZCARD', request_expiry) - max_requests
  if excess > 0 then
    local oldest = redis.call('ZPOPMIN', request_expiry, excess)
    for j = 1, #oldest, 2 do redis.call('HDEL', requests, oldest[j]) end
  end
end
return reply
