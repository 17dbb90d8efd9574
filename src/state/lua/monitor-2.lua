--[[
  One pass of the node monitor, as one step:
   1. a node whose last heartbeat is older than the timeout (and than the timeout its agent was
      last told, which it fences its jobs by: see heartbeat-3.lua) is marked down, and each
      job scheduled or running there is requeued (or ends, if it was being cancelled);
   2. a running job whose lease expired is requeued (its agent stopped renewing), looked for on
      a slice of the nodes each pass, which also has their room index (include/room.lua) made good;
   3. a delayed job whose backoff has passed becomes pending again;
   4. ids of finished jobs whose records expired (RETENTION_MS) leave the listing index, and past
      the most finished jobs kept the oldest ends go at once (a count bound as well as a time bound:
      at thousands of jobs a second, 7 days of records would not fit in any Redis);
   5. a terminal session (jobs:tty) that no client has followed for its grace period is hung
      up: cancelled, which its agent does with SIGHUP, as sshd does when its connection goes.
  Requeueing takes a new fencing token, so the old holder's late result is refused.
  The timeout becomes the cluster's (cluster hash), which heartbeats hand to the agents.
  KEYS[1] heartbeats zset, KEYS[2] cluster hash
  ARGV[1] prefix, ARGV[2] now (ms, '' for Redis' clock), ARGV[3] node timeout (ms), ARGV[4] most jobs to move per kind,
  ARGV[5] most finished jobs kept
  Returns {nodes marked down (list), jobs requeued, jobs promoted, sessions hung up (list)}
]]
-- @include clock
-- @include keys
-- @include jobs
local now, timeout, limit = clock(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local down, requeued, promoted = {}, 0, 0

local function lose(id, reason)
  requeued = requeued + loseJob(id, reason, now)
end

redis.call('HSET', KEYS[2], 'nodeTimeoutMs', timeout)
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - timeout)) do
  local nk = nodeKey(name)
  local rec = redis.call('HMGET', nk, 'status', 'lastHeartbeat', 'nodeTimeoutMs')
  -- A node told a longer timeout (a leader with a shorter one took over since) keeps it.
  if rec[1] ~= 'down' and now - tonumber(rec[2] or 0) > tonumber(rec[3] or 0) then
    -- Its jobs are requeued below: it runs none that count.
    redis.call('HSET', nk, 'status', 'down', 'runningJobs', 0)
    indexRoom(name)
    table.insert(down, name)
    for _, id in ipairs(nodeJobIds(name)) do
      lose(id, 'node ' .. name .. ' went down')
    end
  end
end

-- Leases and the room index, a slice of the nodes a pass (an SSCAN cursor kept in the cluster
-- hash): a pass costs the same with 10 nodes or 10,000, and a sweep of all takes nodes /
-- SWEEP_NODES passes. A node that stops altogether is found above, all at once; what the sweep
-- finds is a job whose agent lives on but stopped renewing it, whose lease is far longer.
local SWEEP_NODES = 100
local scan = redis.call('SSCAN', K.nodes, redis.call('HGET', KEYS[2], 'sweepCursor') or '0', 'COUNT', SWEEP_NODES)
redis.call('HSET', KEYS[2], 'sweepCursor', scan[1])
for _, name in ipairs(scan[2]) do
  local lk = nodeLeasesKey(name)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', lk, '-inf', now, 'LIMIT', 0, limit)) do
    if redis.call('HGET', jobKey(id), 'state') == 'running' then
      lose(id, 'lease expired on node ' .. name)
    else
      redis.call('ZREM', lk, id)
    end
  end
  -- The index heals here: a cluster that ran without it gets it, a change it missed is caught.
  indexRoom(name)
end

local due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(due) do
  local jk = jobKey(id)
  redis.call('ZREM', K.delayed, id)
  if redis.call('HGET', jk, 'state') == 'pending' then
    redis.call('ZADD', K.pending, redis.call('HGET', jk, 'score'), id)
    redis.call('HSET', jk, 'waitReason', 'waiting for the scheduler')
    promoted = promoted + 1
  end
end
if promoted > 0 then wake(K.schedWake) end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.all, '-inf', now - RETENTION_MS, 'LIMIT', 0, limit)) do
  if redis.call('EXISTS', jobKey(id)) == 0 then redis.call('ZREM', K.all, id) end
end
redis.call('ZREMRANGEBYSCORE', K.done, '-inf', now - RETENTION_MS)
local over = redis.call('ZCARD', K.done) - tonumber(ARGV[5])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', K.done, math.min(over, limit))
  for i = 1, #oldest, 2 do
    local id = oldest[i]
    local state = redis.call('HGET', jobKey(id), 'state')
    if not state or TERMINAL[state] then
      redis.call('DEL', jobKey(id), logKey(id), logSizesKey(id), stdinKey(id))
      redis.call('ZREM', K.all, id)
    end
  end
end

local hungUp = {}
for _, id in ipairs(redis.call('SRANDMEMBER', K.tty, limit)) do
  local state = redis.call('HGET', jobKey(id), 'state')
  if not state or TERMINAL[state] then
    redis.call('SREM', K.tty, id)
  elseif redis.call('EXISTS', clientKey(id)) == 0 then
    redis.call('SREM', K.tty, id)
    cancel(id, now, 'hung up: no client followed the terminal session (its oswalk run -t was killed or cut off)')
    table.insert(hungUp, id)
  end
end
return { down, requeued, promoted, hungUp }
