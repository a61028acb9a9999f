-- registration-write: stores or removes one function or trigger record and announces the
-- change, as one step, so that an instance told about it always reads it back.
--
-- KEYS[1] records  HASH   id -> record JSON (the functions' or the triggers')
-- ARGV[1] "set" or "delete"
-- ARGV[2] the record's id
-- ARGV[3] the record as JSON ("" for a delete)
-- ARGV[4] the registrations' change channel
--
-- Returns 1 when a record was stored or removed, 0 when a delete found none.

local changed = 1
if ARGV[1] == 'set' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
else
  changed = redis.call('HDEL', KEYS[1], ARGV[2])
end
if changed == 1 then redis.call('SPUBLISH', ARGV[4], 'changed') end
return changed
