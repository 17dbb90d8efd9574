--[[
  Apply a scheduler plan. A placement happens only if the job is still pending (not
  cancelled, not already placed by an older plan) and the node is still ready with room
  for it; otherwise it is skipped and the job waits for the next pass. Waiting jobs get
  the scheduler's reason. Each node that got work is woken once.
  KEYS[1] jobs:pending
  ARGV[1] prefix, ARGV[2] now (ms), ARGV[3] number of placements n,
  ARGV[4 .. 3+2n] jobId, node pairs; then jobId, reason pairs for waiting jobs
  Returns {placed, skipped}
]]
-- @include keys
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local placed, skipped = 0, 0
local woken = {}
for i = 4, 3 + 2 * n, 2 do
  local id, node = ARGV[i], ARGV[i + 1]
  local jk = jobKey(id)
  local j = redis.call('HMGET', jk, 'state', 'milliCpus', 'memoryBytes', 'ownerKind', 'ownerName')
  local nd = redis.call('HMGET', nodeKey(node), 'status', 'cpus', 'memoryBytes')
  local ok = j[1] == 'pending' and redis.call('ZSCORE', KEYS[1], id) and nd[1] == 'ready'
  if ok then
    local a = redis.call('HMGET', allocKey(node), 'milliCpus', 'memoryBytes')
    local mc, mem = tonumber(j[2]), tonumber(j[3])
    ok = (tonumber(a[1]) or 0) + mc <= math.floor(tonumber(nd[2]) * 1000 + 0.5)
      and (tonumber(a[2]) or 0) + mem <= tonumber(nd[3])
    local ok_key = j[4] == 'Job' and ownerKey('Job', j[5])
    if ok and ok_key then
      local par = redis.call('HMGET', ok_key, 'parallelism', 'active')
      local limit = tonumber(par[1]) or 0
      ok = limit == 0 or (tonumber(par[2]) or 0) < limit
    end
    if ok then
      if ok_key and redis.call('EXISTS', ok_key) == 1 then redis.call('HINCRBY', ok_key, 'active', 1) end
      local ak = allocKey(node)
      redis.call('HINCRBY', ak, 'milliCpus', mc)
      redis.call('HINCRBY', ak, 'memoryBytes', mem)
      redis.call('HINCRBY', ak, 'jobs', 1)
      redis.call('HSET', jk, 'state', 'scheduled', 'node', node, 'scheduledAt', now, 'waitReason', '', 'allocated', '1')
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', nodeQueueKey(node), now, id)
      redis.call('SADD', nodeJobsKey(node), id)
      if not woken[node] then
        wake(nodeWakeKey(node))
        woken[node] = true
      end
      placed = placed + 1
    end
  end
  if not ok then skipped = skipped + 1 end
end
for i = 4 + 2 * n, #ARGV, 2 do
  local jk = jobKey(ARGV[i])
  if redis.call('HGET', jk, 'state') == 'pending' then
    redis.call('HSET', jk, 'waitReason', ARGV[i + 1])
  end
end
return { placed, skipped }
