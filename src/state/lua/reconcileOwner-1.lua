--[[
  Make the job records of a Job or Service manifest match it, in one step.
  Job: the first time, create one record per completion index and the owner status
  (completions, succeeded, failed, phase Running → Complete | Failed, kept by finish());
  afterwards a Job is immutable and nothing changes. completions = 0 (the manifest was
  deleted) cancels what still runs and forgets the owner, so the name can be applied again.
  Service: keep exactly one live record per replica index 0..replicas-1. A replica that
  ended is replaced (not one of an OnFailure Service that succeeded or failed for good), extra
  ones are cancelled, and a changed spec replaces the replicas one index at a time.
  replicas = 0 (the manifest was deleted) cancels them all.
  KEYS[1] owner:<Kind>:<name>
  ARGV[1] prefix, ARGV[2] kind, ARGV[3] name, ARGV[4] replicas or completions, ARGV[5] spec hash,
  ARGV[6] now (ms, '' for Redis' clock), ARGV[7] Job parallelism (0: no limit; the placeJobs script enforces it),
  ARGV[8..] pairs: an index, its JSON record (as submitJobs takes). Records are made only for
  the indices a call without them said were missing (a Job of 10,000 completions would
  otherwise be 10,000 records built on every pass), and a Job is created whole or not at all.
  Returns {created, cancelled, indices still missing a record...}
]]
-- @include clock
-- @include keys
-- @include jobs
-- How long a replica of a new spec runs before the old one of its index is stopped.
local READY_MS = 5000
local kind, name, n, specHash, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], clock(ARGV[6])
local ok = KEYS[1]
local created, cancelled = 0, 0
local owners = ownersKey(kind)
local given = {}
for i = 8, #ARGV, 2 do given[tonumber(ARGV[i])] = ARGV[i + 1] end

if kind == 'Job' and n == 0 then
  for _, id in ipairs(redis.call('SMEMBERS', ownerJobsKey(kind, name))) do
    local r = cancel(id, now, 'its Job was deleted')
    if r == 'cancelled' or r == 'cancelling' then cancelled = cancelled + 1 end
  end
  redis.call('DEL', ok, ownerJobsKey(kind, name))
  redis.call('SREM', owners, name)
  return { 0, cancelled }
end

if kind == 'Job' then
  if redis.call('EXISTS', ok) == 1 then return { 0, 0 } end
  if #ARGV < 8 then
    local missing = { 0, 0 }
    for i = 0, n - 1 do missing[#missing + 1] = i end
    return missing
  end
  redis.call('HSET', ok, 'kind', kind, 'name', name, 'completions', n, 'succeeded', 0, 'failed', 0,
    'cancelled', 0, 'phase', 'Running', 'specHash', specHash, 'createdAt', now,
    'parallelism', tonumber(ARGV[7]) or 0, 'active', 0)
  redis.call('SADD', owners, name)
  for i = 9, #ARGV, 2 do created = created + submitJob(cjson.decode(ARGV[i]), now) end
  if created > 0 then wake(K.schedWake) end
  return { created, 0 }
end

local changed = redis.call('HGET', ok, 'specHash') ~= specHash
local ojk = ownerJobsKey(kind, name)
-- A replica of a restartPolicy OnFailure Service that succeeded, or failed past its
-- backoffLimit, has ended for good (as docker's on-failure policy has it): its index stays
-- ended (owner field ended.<index>) until the spec changes.
if changed then
  for _, f in ipairs(redis.call('HKEYS', ok)) do
    if string.sub(f, 1, 6) == 'ended.' then redis.call('HDEL', ok, f) end
  end
end
-- The live replicas by index: of this spec (cur), or of an earlier one (old). A record made
-- before records carried their spec's hash is of this spec unless the spec changed.
local cur, old = {}, {}
local function drop(id, why)
  cancel(id, now, why)
  cancelled = cancelled + 1
end
for _, id in ipairs(redis.call('SMEMBERS', ojk)) do
  local j = redis.call('HMGET', jobKey(id), 'state', 'index', 'cancelRequested', 'restartPolicy', 'specHash', 'startedAt')
  local idx = tonumber(j[2])
  local mine = j[5] == specHash or (not j[5] and not changed)
  if not j[1] or TERMINAL[j[1]] then
    redis.call('SREM', ojk, id)
    if mine and j[4] == 'OnFailure' and (j[1] == 'succeeded' or j[1] == 'failed') then
      redis.call('HSET', ok, 'ended.' .. idx, j[1])
    end
  elseif j[3] == '1' then
    -- already on its way out; its replacement is judged on its own
  elseif n == 0 then
    drop(id, 'its Service was deleted')
  elseif idx >= n then
    drop(id, 'the Service was scaled down')
  elseif (mine and cur[idx]) or (not mine and old[idx]) then
    drop(id, 'a second replica of the same index')
  elseif mine then
    cur[idx] = { id = id, ready = j[1] == 'running' and now - (tonumber(j[6]) or now) >= READY_MS }
  else
    old[idx] = id
  end
end
-- A changed spec rolls out one index at a time: a replica of the new spec starts next to the
-- old one, which is stopped once the new one has run READY_MS; a new spec that never gets
-- there (it crashes) leaves the other old replicas serving, as a Kubernetes rollout stalls.
local rolling = false
for i = 0, n - 1 do
  if old[i] and cur[i] then
    if cur[i].ready then drop(old[i], 'replaced: the Service spec changed') else rolling = true end
  end
end
local missing = {}
for i = 0, n - 1 do
  if not cur[i] and not redis.call('HGET', ok, 'ended.' .. i) and (not old[i] or not rolling) then
    if old[i] then rolling = true end
    if given[i] then created = created + submitJob(cjson.decode(given[i]), now) else missing[#missing + 1] = i end
  end
end
if n == 0 then
  redis.call('SREM', owners, name)
  redis.call('DEL', ok)
  redis.call('DEL', ojk) -- what it held is cancelled; nothing asks for it again
else
  redis.call('SADD', owners, name)
  redis.call('HSET', ok, 'kind', kind, 'name', name, 'replicas', n, 'specHash', specHash, 'phase', 'Running')
end
if created > 0 then wake(K.schedWake) end
local out = { created, cancelled }
for _, i in ipairs(missing) do out[#out + 1] = i end
return out
