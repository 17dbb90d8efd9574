--[[
  An agent reports the end of an attempt. Exactly once: only the current holder (matching
  fencing token, job still running) is heard; a late or stale report changes nothing.
  A failure with retries left goes to the delayed set with exponential backoff; a service
  replica (restartPolicy Always) always comes back.

  In the same step the agent may take the next jobs (BullMQ's worker does the same): the head
  of jobs:pending starts here at once when the scheduler could only have chosen this node —
  the job has no nodeSelector or runtime constraint, fits here, and no other node has room
  for it. Anything else is left to the scheduler, which is woken as usual. This saves the
  scheduling pass and the claim round trips for every job of a backlog.
  KEYS[1] job hash
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] token, ARGV[4] now (ms), ARGV[5] exit code ('' if none),
  ARGV[6] how it ended: exit | deadline | error | stopped, ARGV[7] message,
  ARGV[8] backoff base (ms), ARGV[9] backoff cap (ms),
  ARGV[10] node to take jobs for ('' for none), ARGV[11] agent epoch, ARGV[12] lease (ms),
  ARGV[13] most jobs to take
  Returns {outcome, claims...}: outcome is stale | succeeded | failed | cancelled | retrying |
  requeued; each claim is 4 elements {id, token, attempt, spec}
]]
-- @include keys
-- @include jobs
local id, token, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local exitCode, how, message = ARGV[5], ARGV[6], ARGV[7]
local node, lease, max = ARGV[10], tonumber(ARGV[12]), tonumber(ARGV[13])
local pulling = false
if node ~= '' then
  local nd = redis.call('HMGET', nodeKey(node), 'agentEpoch', 'status')
  pulling = nd[1] == ARGV[11] and nd[2] == 'ready'
end
holdSchedulerWake = pulling

-- An attempt that does not end the job leaves its own line in the results audit; one that
-- does is recorded by finish().
local function attemptEnded(attempt)
  redis.call('XADD', K.results, 'MAXLEN', '~', 100000, '*', 'id', id, 'attempt', attempt, 'state', 'attempt-ended', 'exitCode', exitCode)
end

local function ended()
  local j = redis.call('HMGET', KEYS[1], 'state', 'token', 'cancelRequested', 'restartPolicy', 'backoffLimit', 'attempt', 'node')
  if j[1] ~= 'running' or j[2] ~= token then return 'stale' end
  if j[3] == '1' then
    finish(id, 'cancelled', exitCode, 'cancelled', now)
    return 'cancelled'
  end
  if j[3] == 'move' then
    attemptEnded(j[6])
    requeue(id, 'moved off draining node ' .. j[7], now, 0)
    return 'requeued'
  end
  local always = j[4] == 'Always'
  if how == 'exit' and exitCode == '0' and not always then
    finish(id, 'succeeded', exitCode, message, now)
    return 'succeeded'
  end
  if how == 'deadline' and not always then
    finish(id, 'failed', exitCode, message ~= '' and message or 'activeDeadlineSeconds exceeded', now)
    return 'failed'
  end
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if always or failures <= tonumber(j[5]) then
    local delay = math.min(tonumber(ARGV[8]) * 2 ^ (failures - 1), tonumber(ARGV[9]))
    attemptEnded(j[6])
    redis.call('HSET', KEYS[1], 'exitCode', exitCode, 'message', message)
    local what = (how == 'exit' and ('exited with ' .. exitCode)) or message
    requeue(id, string.format('%s; retry %d in %.1fs', what, failures, delay / 1000), now, delay)
    return 'retrying'
  end
  finish(id, 'failed', exitCode, message, now)
  return 'failed'
end

-- What the other nodes have free, read once: only this node's reservations change below.
local others
local function roomElsewhere(mc, mem)
  if not others then
    others = {}
    for _, other in ipairs(redis.call('SMEMBERS', K.nodes)) do
      if other ~= node then
        local ready, fm, fmem = nodeFree(other)
        if ready then table.insert(others, { fm, fmem }) end
      end
    end
  end
  for _, o in ipairs(others) do
    if mc <= o[1] and mem <= o[2] then return true end
  end
  return false
end

local out = { ended() }
if not pulling then return out end
local _, freeMilli, freeMem = nodeFree(node)
local taken = 0
while taken < max and freeMilli > 0 do
  local h = redis.call('ZRANGE', K.pending, 0, 0)[1]
  if not h then break end
  local j = redis.call('HMGET', jobKey(h), 'state', 'anywhere', 'milliCpus', 'memoryBytes', 'ownerKind', 'ownerName', 'spec')
  if j[1] ~= 'pending' or j[2] ~= '1' then break end
  local mc, mem = tonumber(j[3]), tonumber(j[4])
  if mc > freeMilli or mem > freeMem then break end
  local ok_key, room = groupRoom(j[5], j[6])
  if not room or roomElsewhere(mc, mem) then break end
  reserve(h, node, mc, mem, ok_key, now, false)
  for _, v in ipairs(start(h, node, now, lease, j[7])) do table.insert(out, v) end
  freeMilli, freeMem = freeMilli - mc, freeMem - mem
  taken = taken + 1
end
-- The scheduler has work only if this node kept room (for jobs behind the head, or for a
-- head job it could not take): every other node is as it was.
if taken == 0 or freeMilli > 0 then wake(K.schedWake) end
return out
