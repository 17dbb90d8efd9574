--[[
  An agent reports the end of an attempt. Exactly once: only the current holder (matching
  fencing token, job still running) is heard; a late or stale report changes nothing.
  A failure with retries left goes to the delayed set with exponential backoff; a service
  replica (restartPolicy Always) always comes back.
  KEYS[1] job hash
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] token, ARGV[4] now (ms), ARGV[5] exit code ('' if none),
  ARGV[6] how it ended: exit | deadline | error | stopped, ARGV[7] message,
  ARGV[8] backoff base (ms), ARGV[9] backoff cap (ms)
  Returns the outcome: stale | succeeded | failed | cancelled | retrying | requeued
]]
-- @include keys
-- @include jobs
local id, token, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
local exitCode, how, message = ARGV[5], ARGV[6], ARGV[7]
local j = redis.call('HMGET', KEYS[1], 'state', 'token', 'cancelRequested', 'restartPolicy', 'backoffLimit', 'attempt')
if j[1] ~= 'running' or j[2] ~= token then return 'stale' end
redis.call('XADD', K.results, 'MAXLEN', '~', 100000, '*', 'id', id, 'attempt', j[6], 'state', 'attempt-ended', 'exitCode', exitCode)
if j[3] == '1' then
  finish(id, 'cancelled', exitCode, 'cancelled', now)
  return 'cancelled'
end
if j[3] == 'move' then
  requeue(id, 'moved off draining node ' .. redis.call('HGET', KEYS[1], 'node'), now, 0)
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
  redis.call('HSET', KEYS[1], 'exitCode', exitCode, 'message', message)
  local what = (how == 'exit' and ('exited with ' .. exitCode)) or message
  requeue(id, string.format('%s; retry %d in %.1fs', what, failures, delay / 1000), now, delay)
  return 'retrying'
end
finish(id, 'failed', exitCode, message, now)
return 'failed'
