-- Job-state transitions shared by several scripts (needs include keys).
-- @include room

local TERMINAL = { succeeded = true, failed = true, cancelled = true }
-- Set by a script that decides itself whether the scheduler needs a pass (completeJobs taking
-- the next job): release() then leaves wake:scheduler alone.
local holdSchedulerWake = false
-- A finished job's record and output are kept this long, then expire (the monitor drops
-- expired ids from jobs:all).
local RETENTION_MS = 7 * 24 * 3600 * 1000

-- As a decimal string: Lua would print a 16-digit number as 1e+15 and lose the age order.
local function pendingScore(priority, seq)
  return string.format('%d', (1000 - tonumber(priority)) * 1e12 + tonumber(seq))
end

-- A short system line in the job's log stream (placement, requeue, retry, end).
local function logSys(id, text)
  redis.call('XADD', logKey(id), '*', 't', 'sys', 'd', text, 'n', 0)
end

-- Counters (HINCRBY) a script may defer: one that sets deferIncr = {} has incr() add up per key
-- and field, and flushIncr() write each sum once. A job that ends and the next one that starts
-- on the same node then cost no reservation write at all, and reports that end together one
-- count per state.
local deferIncr
-- Nodes whose reservations changed while incr() deferred: flushIncr() indexes their room after.
local deferRoom = {}
local function incr(key, field, n)
  if not deferIncr then
    redis.call('HINCRBY', key, field, n)
    return
  end
  local k = deferIncr[key] or {}
  k[field] = (k[field] or 0) + n
  deferIncr[key] = k
end
-- What incr() has deferred for key and field, for scripts that read the counter meanwhile.
local function deferred(key, field)
  local k = deferIncr and deferIncr[key]
  return k and k[field] or 0
end
local function flushIncr()
  for key, fields in pairs(deferIncr or {}) do
    for field, n in pairs(fields) do
      if n ~= 0 then redis.call('HINCRBY', key, field, n) end
    end
  end
  deferIncr = {}
  for node in pairs(deferRoom) do indexRoom(node) end
  deferRoom = {}
end

-- A node's reservations: CPUs, memory and jobs placed on it.
local function addAlloc(node, mc, mem, jobs)
  local ak = allocKey(node)
  incr(ak, 'milliCpus', mc)
  incr(ak, 'memoryBytes', mem)
  incr(ak, 'jobs', jobs)
  if deferIncr then deferRoom[node] = true else indexRoom(node) end
end

-- Give back the job's reservation on its node and take it off that node's lists. The caller
-- writes 'allocated' = '0' on the record in its own HSET (the flag makes a release happen once).
-- Returns the record's fields {node, milliCpus, memoryBytes, allocated, ownerKind, ownerName,
-- state, attempt, follow}, read once here for the callers too (f: a caller that read them already).
local RELEASE_FIELDS = { 'node', 'milliCpus', 'memoryBytes', 'allocated', 'ownerKind', 'ownerName', 'state', 'attempt', 'follow' }
local function release(id, f)
  f = f or redis.call('HMGET', jobKey(id), unpack(RELEASE_FIELDS))
  local node = f[1]
  if node and node ~= '' then
    if f[4] == '1' then
      -- 0 - x, not -x: Lua prints -0 for a zero, which HINCRBY refuses.
      addAlloc(node, 0 - tonumber(f[2]), 0 - tonumber(f[3]), -1)
      -- A Job's records placed at once count against its parallelism.
      if f[5] == 'Job' and redis.call('EXISTS', ownerKey('Job', f[6])) == 1 then
        redis.call('HINCRBY', ownerKey('Job', f[6]), 'active', -1)
      end
    end
    -- A running job left the node's claim queue when it was claimed, and holds a lease there.
    if f[7] == 'running' then
      redis.call('ZREM', nodeLeasesKey(node), id)
    else
      redis.call('ZREM', nodeQueueKey(node), id)
    end
  end
  if not holdSchedulerWake then wake(K.schedWake) end
  return f
end

-- The owner's status is derived in the same step as the record's end, so it never drifts.
-- Defined below (it finishes jobs, which tell their owner); ownerFinished needs it first.
local cancel

local function ownerFinished(ownerKind, ownerName, state, now)
  if ownerKind ~= 'Job' then return end
  local ok = ownerKey('Job', ownerName)
  if redis.call('EXISTS', ok) == 0 then return end -- the Job was deleted
  redis.call('HINCRBY', ok, state, 1)
  local s = redis.call('HMGET', ok, 'completions', 'succeeded', 'failed', 'phase')
  if s[4] ~= 'Running' then return end
  if tonumber(s[2] or '0') >= tonumber(s[1]) then
    redis.call('HSET', ok, 'phase', 'Complete', 'finishedAt', now)
  elseif tonumber(s[3] or '0') > 0 then
    redis.call('HSET', ok, 'phase', 'Failed', 'finishedAt', now)
    -- A failed Job starts nothing more and stops what still runs, as a Kubernetes Job does.
    for _, id in ipairs(redis.call('SMEMBERS', ownerJobsKey('Job', ownerName))) do
      cancel(id, now, 'its Job failed')
    end
  end
end

-- The one way a job reaches a terminal state: it happens once, with one result record.
-- signal: what killed the program, when its agent reported one (completeJobs-1.lua).
local function finish(id, state, exitCode, message, now, f, signal)
  local jk = jobKey(id)
  f = release(id, f)
  -- Only a job that is not running can be queued.
  if f[7] ~= 'running' then
    redis.call('ZREM', K.pending, id)
    redis.call('ZREM', K.delayed, id)
  end
  redis.call('HSET', jk, 'state', state, 'finishedAt', now, 'waitReason', '', 'message', message,
    'leaseExpiry', '', 'exitCode', exitCode, 'signal', signal or '', 'cancelRequested', '', 'allocated', '0')
  redis.call('XADD', K.results, 'MAXLEN', '~', 100000, '*', 'id', id, 'attempt', f[8] or '0', 'state', state, 'exitCode', exitCode)
  incr(K.finished, state, 1)
  -- The end line wakes those who follow the log (followJob-1.lua); readers of a job nobody
  -- followed build the same line from the record (endEntry in jobs.ts), so most jobs cost no
  -- log stream at all. It also says where the last attempt ran: a start writes no line.
  -- Its form is LogEnd (src/api/logs.ts).
  if f[9] == '1' then
    local ended = { state = state, exitCode = tonumber(exitCode) or cjson.null, message = message, attempt = tonumber(f[8]) or 0, node = f[1] or '' }
    if signal and signal ~= '' then ended.signal = signal end
    redis.call('XADD', logKey(id), '*', 't', 'end', 'd', cjson.encode(ended), 'n', 0)
  end
  ownerFinished(f[5], f[6], state, now)
  redis.call('PEXPIRE', jk, RETENTION_MS)
  redis.call('PEXPIRE', logKey(id), RETENTION_MS)
  redis.call('PEXPIRE', logSizesKey(id), RETENTION_MS)
  redis.call('PEXPIRE', stdinKey(id), RETENTION_MS)
  redis.call('ZADD', K.done, now, id)
end

-- Numbers from the counter at `key`, taken `block` at a time with one INCRBY. Numbers left
-- over are never used: callers need them new and in order, not without gaps.
local function counter(key)
  local nextN, last = 1, 0
  return function(block)
    if nextN > last then
      last = redis.call('INCRBY', key, block)
      nextN = last - block + 1
    end
    nextN = nextN + 1
    return nextN - 1
  end
end

-- Fencing tokens: a report is heard only when its token equals the job's. A script that starts
-- several jobs sets fenceBlock to take their tokens with one INCRBY.
local fenceBlock, fences = 1, counter(K.fence)
local function nextFence()
  return fences(fenceBlock)
end

-- Queue order numbers: one INCRBY for a script's whole submit (a block has a number for every
-- argument, so for every record).
local seqs = counter(K.seq)
local function nextSeq()
  return seqs(#ARGV)
end

-- Why a job given more standard input than is kept for a new start (stdinPiped,
-- appendStdin-1.lua) does not start over: what it read is gone, as from a pipe.
local PIPED_INPUT = 'not started again: more standard input went to it than is kept for a new start, and what it read is gone, as from a pipe'
-- Why a session (spec.attachKey: `oswalk run -i`/`-t` attached to its node directly) does not
-- start over once it ran: its input went to that attempt alone, as an ssh session's does.
local SESSION_INPUT = 'not started again: it was a session, and its input went to the attempt that ran, as in an ssh session'

-- Why a job may not start over (nil: it may): its input was a pipe, or it is a session that ran.
local function heldInput(jk)
  local h = redis.call('HMGET', jk, 'stdinPiped', 'session', 'state')
  if h[1] == '1' then return PIPED_INPUT end
  if h[2] == '1' and h[3] == 'running' then return SESSION_INPUT end
  return nil
end

-- Back to pending (now, or after delayMs in the delayed set) with a new fencing token,
-- so whatever the previous holder still reports is refused. A job that may not start over
-- (heldInput) ends failed instead. Returns 1 when requeued, 0 when ended.
local function requeue(id, reason, now, delayMs, f)
  local jk = jobKey(id)
  local held = heldInput(jk)
  if held then
    finish(id, 'failed', '', reason .. '; ' .. held, now, f)
    return 0
  end
  f = release(id, f)
  redis.call('HSET', jk, 'state', 'pending', 'node', '', 'lastNode', f[1] or '', 'allocated', '0',
    'token', nextFence(), 'leaseExpiry', '', 'waitReason', reason, 'cancelRequested', '')
  if delayMs > 0 then
    redis.call('ZADD', K.delayed, now + delayMs, id)
  else
    redis.call('ZADD', K.pending, redis.call('HGET', jk, 'score'), id)
  end
  logSys(id, reason)
  return 1
end

-- Create one job record from the table the JS side built (see submitJobs in jobs.ts).
-- Returns 0 when the id already exists, so a retried submit does not double a job.
-- Fields that would only hold their default (no owner, no failures yet, no token) are left
-- out: readers take a missing field as its default (decodeJob in jobs.ts).
local function submitJob(r, now)
  local jk = jobKey(r.id)
  -- The listing index doubles as the existence check; an index entry can outlive its expired
  -- record until the monitor drops it, so only then is the record itself asked.
  if redis.call('ZADD', K.all, 'NX', now, r.id) == 0 then
    if redis.call('EXISTS', jk) == 1 then return 0 end
    redis.call('ZADD', K.all, now, r.id)
  end
  local score = pendingScore(r.priority, nextSeq())
  local fields = { 'id', r.id, 'name', r.name, 'spec', r.spec, 'priority', r.priority, 'milliCpus', r.milliCpus,
    'memoryBytes', r.memoryBytes, 'restartPolicy', r.restartPolicy, 'backoffLimit', r.backoffLimit,
    'state', 'pending', 'attempt', 0, 'score', score, 'createdAt', now, 'anywhere', r.anywhere }
  if r.ownerKind ~= '' then
    for _, v in ipairs({ 'ownerKind', r.ownerKind, 'ownerName', r.ownerName, 'index', r.index, 'specHash', r.specHash or '' }) do table.insert(fields, v) end
    redis.call('SADD', ownerJobsKey(r.ownerKind, r.ownerName), r.id)
  end
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZADD', K.pending, score, r.id)
  if r.input then redis.call('HSET', jk, 'input', r.input) end
  if r.session then redis.call('HSET', jk, 'session', '1') end
  if r.clientGraceMs then
    redis.call('SADD', K.tty, r.id)
    redis.call('SET', clientKey(r.id), '1', 'PX', r.clientGraceMs)
  end
  return 1
end

-- Cancel: a job not yet running ends at once; a running one is marked and its agent woken
-- (it stops the job, and its report records 'cancelled').
-- Returns the state after the call, or false for an unknown job.
cancel = function(id, now, message)
  local jk = jobKey(id)
  local j = redis.call('HMGET', jk, 'state', 'node')
  if not j[1] then return false end
  if TERMINAL[j[1]] then return j[1] end
  if j[1] == 'running' then
    redis.call('HSET', jk, 'cancelRequested', '1')
    wake(nodeStopWakeKey(j[2]))
    return 'cancelling'
  end
  finish(id, 'cancelled', '', message, now)
  return 'cancelled'
end

-- A job whose holder is gone (node down, lease expired, agent restarted; `why` says which):
-- requeued, or ended if it was being cancelled anyway. A running terminal session (`oswalk run
-- -t`) ends too: it is a person's, typing at it, and a new start elsewhere would feed what they
-- typed to a new program; it ends as an ssh session ends with its connection. Returns 1 when
-- requeued (not for a job whose input was a pipe: requeue).
local function loseJob(id, why, now)
  local j = redis.call('HMGET', jobKey(id), 'cancelRequested', 'state', 'spec')
  if j[1] == '1' then
    finish(id, 'cancelled', '', 'cancelled; ' .. why, now)
    return 0
  end
  if j[2] == 'running' and cjson.decode(j[3]).tty then
    finish(id, 'failed', '', 'the terminal session was lost: ' .. why, now)
    return 0
  end
  local held = heldInput(jobKey(id))
  if held then
    finish(id, 'failed', '', why .. '; ' .. held, now)
    return 0
  end
  return requeue(id, why .. '; requeued', now, 0)
end

-- What `node` has free: whether it is ready, and its capacity less its reservations, as
-- {ready, milliCpus, memoryBytes}. nd: its {status, cpus, memoryBytes} when already read.
local function nodeFree(node, nd)
  nd = nd or redis.call('HMGET', nodeKey(node), 'status', 'cpus', 'memoryBytes', 'mountReady')
  -- A node whose mount of the unified filesystem is down runs nothing: jobs would see no /cluster.
  if nd[1] ~= 'ready' or nd[4] == 'false' then return false, 0, 0 end
  local ak = allocKey(node)
  local a = redis.call('HMGET', ak, 'milliCpus', 'memoryBytes')
  return true, math.floor(tonumber(nd[2]) * 1000 + 0.5) - (tonumber(a[1]) or 0) - deferred(ak, 'milliCpus'),
    tonumber(nd[3]) - (tonumber(a[2]) or 0) - deferred(ak, 'memoryBytes')
end

-- Can `node` take a job of this size now?
local function nodeFits(node, mc, mem)
  local ready, freeMilli, freeMem = nodeFree(node)
  return ready and mc <= freeMilli and mem <= freeMem
end

-- A Job manifest's parallelism: may one more of its records be placed? Returns the owner key
-- to count against (false for jobs without a Job owner) and whether there is room.
local function groupRoom(ownerKind, ownerName)
  if ownerKind ~= 'Job' then return false, true end
  local ok_key = ownerKey('Job', ownerName)
  local par = redis.call('HMGET', ok_key, 'parallelism', 'active')
  local limit = tonumber(par[1]) or 0
  return ok_key, limit == 0 or (tonumber(par[2]) or 0) < limit
end

-- Reserve the job's CPUs and memory on `node` and take it off jobs:pending. queued: it waits
-- on the node's claim queue as scheduled; otherwise start() follows in the same step and
-- writes the placement with the start.
local function reserve(id, node, mc, mem, ok_key, now, queued)
  if ok_key and redis.call('EXISTS', ok_key) == 1 then redis.call('HINCRBY', ok_key, 'active', 1) end
  addAlloc(node, mc, mem, 1)
  if queued then
    redis.call('HSET', jobKey(id), 'state', 'scheduled', 'node', node, 'scheduledAt', now, 'waitReason', '', 'allocated', '1')
    redis.call('ZADD', nodeQueueKey(node), now, id)
  end
  redis.call('ZREM', K.pending, id)
end

-- A scheduled job starts on its node: running under a new fencing token and a lease.
-- Returns the claim as {id, token, attempt, spec, ms since its first attempt started} (an
-- activeDeadlineSeconds counts from there, across retries and moves, as Kubernetes counts it).
-- A caller that read the record passes its spec and attempt count; placed: the job was reserved
-- without being queued (see reserve).
local function start(id, node, now, lease, spec, attempt, placed)
  local jk = jobKey(id)
  local token = nextFence()
  if attempt then
    attempt = tonumber(attempt) + 1
  else
    attempt = redis.call('HINCRBY', jk, 'attempt', 1)
  end
  local fields = { 'state', 'running', 'token', token, 'startedAt', now, 'leaseExpiry', now + lease, 'attempt', attempt }
  local since = 0
  if attempt == 1 then
    table.insert(fields, 'firstStartedAt')
    table.insert(fields, now)
  else
    since = now - (tonumber(redis.call('HGET', jk, 'firstStartedAt')) or now)
  end
  if placed then
    for _, v in ipairs({ 'node', node, 'scheduledAt', now, 'waitReason', '', 'allocated', '1' }) do table.insert(fields, v) end
  end
  redis.call('HSET', jk, unpack(fields))
  redis.call('ZADD', nodeLeasesKey(node), now + lease, id)
  return { id, tostring(token), tostring(attempt), spec or redis.call('HGET', jk, 'spec'), tostring(since) }
end

-- Every job on `node`: placed there and waiting for its agent, or running there.
local function nodeJobIds(node)
  local ids = redis.call('ZRANGE', nodeQueueKey(node), 0, -1)
  for _, id in ipairs(redis.call('ZRANGE', nodeLeasesKey(node), 0, -1)) do table.insert(ids, id) end
  return ids
end

-- May agent run `epoch` of `node` start work? Not a zombie (a newer run registered) and not down.
local function agentCurrent(node, epoch)
  local st = redis.call('HMGET', nodeKey(node), 'agentEpoch', 'status')
  return st[1] == epoch and st[2] and st[2] ~= 'down'
end
