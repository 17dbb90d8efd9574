--[[
  The life of a lock session: one filesystem process's run on one node, whose flock and POSIX
  locks (lock-1.lua) last only as long as it keeps renewing its lease. A session whose
  deadline passed is dead, and whichever script meets it drops all it held, so a crashed or
  cut-off node's locks go within one lease without a monitor.
  KEYS[1] lk:sessions (routes the script to the prefix's slot; every other key is built from
          the prefix, see include/locks.lua)
  ARGV[1] key prefix, ARGV[2] now (ms, '' for Redis' clock), ARGV[3] op, ARGV[4] session,
  ARGV[5] lease (ms; open and renew)
    open   adds the session (an alive one keeps its locks) with deadline now + lease, and
           first drops up to 100 dead sessions, so the zset does not fill with the sessions of
           processes that died holding nothing that anyone met -> the deadline
    renew  moves the deadline to now + lease only while the session is alive -> the deadline;
           fails with LOST <session> when it is dead (everything it held is dropped: the
           caller has lost its locks)
    close  drops every lock and wait of the session and the session itself -> 1
  Fails with EINVAL for an unknown op.
]]
-- @include fail
-- @include clock
local P, now, op, session = ARGV[1], clock(ARGV[2]), ARGV[3], ARGV[4]
-- @include locks

if op == 'open' then
  local lease = tonumber(ARGV[5])
  for _, s in ipairs(redis.call('ZRANGEBYSCORE', LK.sessions, '-inf', now, 'LIMIT', 0, 100)) do
    dropSession(s)
  end
  redis.call('ZADD', LK.sessions, now + lease, session)
  return now + lease
elseif op == 'renew' then
  local lease = tonumber(ARGV[5])
  local d = redis.call('ZSCORE', LK.sessions, session)
  if not isAlive(d) then
    -- Too late: others may already have been granted what it held, so it must not come back.
    if d then dropSession(session) end
    return fail('LOST', session)
  end
  redis.call('ZADD', LK.sessions, now + lease, session)
  return now + lease
elseif op == 'close' then
  dropSession(session)
  return 1
end
return fail('EINVAL', 'unknown op ' .. tostring(op))
