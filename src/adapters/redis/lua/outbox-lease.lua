-- outbox-lease: takes, renews or gives up an instance's lease on a trigger's outbox, as one step.
-- The lease names the one instance that delivers the trigger's calls; it expires unless renewed.
--
-- KEYS[1] lease  STRING the id of the instance holding it, expiring after ARGV[3] ms
-- ARGV[1] "take" (take it when free, renew it when ours) or "drop" (give it up when ours)
-- ARGV[2] this instance's id
-- ARGV[3] lease time in ms, decimal
--
-- Returns 1 when this instance holds the lease after the step ("drop": 0), else 0.

local lease, mode, me, ms = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('GET', lease)
if mode == 'drop' then
  if holder == me then redis.call('DEL', lease) end
  return 0
end
if holder == me then
  redis.call('PEXPIRE', lease, ms)
  return 1
end
if holder then return 0 end
redis.call('SET', lease, me, 'PX', ms)
return 1
