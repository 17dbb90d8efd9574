--[[
  An agent that starts (or stops) gives back the jobs its previous run was running: that
  run's processes are gone (the runtime's cleanup stopped them) and nobody can report
  their end, so they are requeued now instead of when their leases run out. Jobs placed
  but not yet claimed stay: the agent claims them next.
  KEYS[1] nodejobs:<node>
  ARGV[1] prefix, ARGV[2] node, ARGV[3] now (ms), ARGV[4] reason
  Returns how many jobs were requeued.
]]
-- @include keys
-- @include jobs
local now = tonumber(ARGV[3])
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HGET', jobKey(id), 'state') == 'running' then
    n = n + loseJob(id, ARGV[4], now)
  end
end
return n
