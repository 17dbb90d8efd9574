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
-- @include jobs
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local placed, skipped = 0, 0
local woken = {}
for i = 4, 3 + 2 * n, 2 do
  local id, node = ARGV[i], ARGV[i + 1]
  local j = redis.call('HMGET', jobKey(id), 'state', 'milliCpus', 'memoryBytes', 'ownerKind', 'ownerName')
  local mc, mem = tonumber(j[2]), tonumber(j[3])
  local ok = j[1] == 'pending' and redis.call('ZSCORE', KEYS[1], id) and nodeFits(node, mc, mem)
  local ok_key, room = groupRoom(j[4], j[5])
  if ok and room then
    reserve(id, node, mc, mem, ok_key, now, true)
    if not woken[node] then
      wake(nodeWakeKey(node))
      woken[node] = true
    end
    placed = placed + 1
  else
    skipped = skipped + 1
  end
end
for i = 4 + 2 * n, #ARGV, 2 do
  local jk = jobKey(ARGV[i])
  if redis.call('HGET', jk, 'state') == 'pending' then
    redis.call('HSET', jk, 'waitReason', ARGV[i + 1])
  end
end
return { placed, skipped }
