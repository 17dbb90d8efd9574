--[[
  An agent reports the ends of attempts, several at once when they ended together (a group
  commit: one round trip for all of them). Each exactly once: only the current holder
  (matching fencing token, job still running) is heard; a late or stale report changes
  nothing. A failure with retries left goes to the delayed set with exponential backoff; a
  service replica (restartPolicy Always) always comes back.

  In the same step the agent may take the next jobs (BullMQ's worker does the same): the head
  of jobs:pending starts here at once when the scheduler could only have chosen this node —
  the job has no nodeSelector or runtime constraint, fits here, and no other node has room
  for it. Anything else is left to the scheduler, which is woken as usual. This saves the
  scheduling pass and the claim round trips for every job of a backlog.
  KEYS[1] jobs:pending
  ARGV[1] prefix, ARGV[2] now (ms, '' for Redis' clock), ARGV[3] backoff base (ms), ARGV[4] backoff cap (ms),
  ARGV[5] node to take jobs for ('' for none), ARGV[6] agent epoch, ARGV[7] lease (ms),
  ARGV[8] most jobs to take, ARGV[9] number of reports n, then per report:
  job id, token, exit code ('' if none), how it ended (exit | deadline | error | stopped), message,
  the signal that killed the program ('' if none)
  Returns {outcome 1..n, claims...}: each outcome is stale | succeeded | failed | cancelled |
  retrying | requeued; each claim is 5 elements {id, token, attempt, spec, ms since first start}
]]
-- @include clock
-- @include keys
-- @include jobs
local now = clock(ARGV[2])
local HEAD_PAGE = 16
local node, lease, max = ARGV[5], tonumber(ARGV[7]), tonumber(ARGV[8])
local pulling, nd = false, nil
if node ~= '' then
  nd = redis.call('HMGET', nodeKey(node), 'agentEpoch', 'status', 'cpus', 'memoryBytes', 'mountReady')
  pulling = nd[1] == ARGV[6] and nd[2] == 'ready' and nd[5] ~= 'false'
end
holdSchedulerWake = pulling
deferIncr = {}

-- An attempt that does not end the job leaves its own line in the results audit; one that
-- does is recorded by finish().
local function attemptEnded(id, attempt, exitCode)
  redis.call('XADD', K.results, 'MAXLEN', '~', 100000, '*', 'id', id, 'attempt', attempt, 'state', 'attempt-ended', 'exitCode', exitCode)
end

-- What release() needs, then what the outcome needs: one read of each record.
local ENDED_FIELDS = { unpack(RELEASE_FIELDS) }
for _, x in ipairs({ 'token', 'cancelRequested', 'restartPolicy', 'backoffLimit', 'startedAt' }) do table.insert(ENDED_FIELDS, x) end
-- A service replica that ran this long before it exited starts its backoff over (Kubernetes: 10 min).
local BACKOFF_RESET_MS = 600000

local function ended(id, token, exitCode, how, message, signal)
  local jk = jobKey(id)
  local f = redis.call('HMGET', jk, unpack(ENDED_FIELDS))
  local n = #RELEASE_FIELDS
  local j = { f[n + 1], f[n + 2], f[n + 3], f[n + 4], f[n + 5] }
  if f[7] ~= 'running' or j[1] ~= token then return 'stale' end
  if j[2] == '1' then
    finish(id, 'cancelled', exitCode, 'cancelled', now, f)
    return 'cancelled'
  end
  local held = heldInput(jk)
  if j[2] == 'move' then
    if held then
      finish(id, 'failed', exitCode, 'stopped to move off draining node ' .. f[1] .. '; ' .. held, now, f, signal)
      return 'failed'
    end
    attemptEnded(id, f[8], exitCode)
    requeue(id, 'moved off draining node ' .. f[1], now, 0, f)
    return 'requeued'
  end
  local always = j[3] == 'Always'
  if how == 'exit' and exitCode == '0' and not always then
    finish(id, 'succeeded', exitCode, message, now, f)
    return 'succeeded'
  end
  if how == 'deadline' and not always then
    finish(id, 'failed', exitCode, message ~= '' and message or 'activeDeadlineSeconds exceeded', now, f, signal)
    return 'failed'
  end
  if always and now - (tonumber(j[5]) or now) >= BACKOFF_RESET_MS then redis.call('HSET', jk, 'failures', 0) end
  local failures = redis.call('HINCRBY', jk, 'failures', 1)
  if (always or failures <= tonumber(j[4])) and not held then
    local delay = math.min(tonumber(ARGV[3]) * 2 ^ (failures - 1), tonumber(ARGV[4]))
    attemptEnded(id, f[8], exitCode)
    redis.call('HSET', jk, 'exitCode', exitCode, 'message', message, 'signal', signal)
    local what = (how == 'exit' and ('exited with ' .. exitCode)) or message
    requeue(id, string.format('%s; retry %d in %.1fs', what, failures, delay / 1000), now, delay, f)
    return 'retrying'
  end
  if held and (always or failures <= tonumber(j[4])) then message = (message ~= '' and message .. '; ' or '') .. held end
  finish(id, 'failed', exitCode, message, now, f, signal)
  return 'failed'
end

-- Whether another node has room for the job: the nodes the room index (include/room.lua) says
-- have the CPUs, a few of them checked for memory too. When those few all lack the memory,
-- more may exist: the job is left to the scheduler, which looks at every node with room.
local ROOM_PROBES = 8
local function roomElsewhere(mc, mem)
  local probes = redis.call('ZRANGEBYSCORE', K.room, mc, '+inf', 'LIMIT', 0, ROOM_PROBES)
  for _, other in ipairs(probes) do
    if other ~= node then
      local ready, fm, fmem = nodeFree(other)
      if ready and mc <= fm and mem <= fmem then return true end
    end
  end
  return #probes == ROOM_PROBES
end

local out = {}
for i = 10, 9 + 6 * tonumber(ARGV[9]), 6 do
  table.insert(out, ended(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]))
end
if not pulling then
  flushIncr()
  return out
end
local _, freeMilli, freeMem = nodeFree(node, { nd[2], nd[3], nd[4], nd[5] })
-- The head of the queue, a page at a time: each job taken leaves it, so the next page starts
-- at 0 again.
local heads, hi = {}, 1
local function nextHead()
  if hi > #heads then
    heads, hi = redis.call('ZRANGE', K.pending, 0, HEAD_PAGE - 1), 1
  end
  hi = hi + 1
  return heads[hi - 1]
end
fenceBlock = math.min(max, HEAD_PAGE)
local taken = 0
while taken < max and freeMilli > 0 do
  local h = nextHead()
  if not h then break end
  local j = redis.call('HMGET', jobKey(h), 'state', 'anywhere', 'milliCpus', 'memoryBytes', 'ownerKind', 'ownerName', 'spec', 'attempt')
  if j[1] ~= 'pending' or j[2] ~= '1' then break end
  local mc, mem = tonumber(j[3]), tonumber(j[4])
  if mc > freeMilli or mem > freeMem then break end
  local ok_key, room = groupRoom(j[5], j[6])
  if not room or roomElsewhere(mc, mem) then break end
  reserve(h, node, mc, mem, ok_key, now, false)
  for _, v in ipairs(start(h, node, now, lease, j[7], j[8], true)) do table.insert(out, v) end
  freeMilli, freeMem = freeMilli - mc, freeMem - mem
  taken = taken + 1
end
-- The scheduler has work only if this node kept room (for jobs behind the head, or for a
-- head job it could not take): every other node is as it was.
if taken == 0 or freeMilli > 0 then wake(K.schedWake) end
flushIncr()
return out
