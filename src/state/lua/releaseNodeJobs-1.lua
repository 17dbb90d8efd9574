--[[
  An agent that starts (or stops) gives back the jobs its previous run was running: that
  run's processes are gone (the runtime's cleanup stopped them) and nobody can report
  their end, so they are requeued now instead of when their leases run out.
  On start, jobs placed but not yet claimed stay: the agent claims them next. On stop,
  the node is marked down (nothing more is placed there) and those are requeued too.
  KEYS[1] leases:<node>
  ARGV[1] prefix, ARGV[2] node, ARGV[3] now (ms), ARGV[4] reason, ARGV[5] 'start' | 'stop'
  Returns how many jobs were requeued.
]]
-- @include keys
-- @include jobs
local now, stopping = tonumber(ARGV[3]), ARGV[5] == 'stop'
if stopping then
  redis.call('HSET', nodeKey(ARGV[2]), 'status', 'down')
  indexRoom(ARGV[2])
end
local n = 0
for _, id in ipairs(nodeJobIds(ARGV[2])) do
  local state = redis.call('HGET', jobKey(id), 'state')
  if state == 'running' or (stopping and state == 'scheduled') then
    n = n + loseJob(id, ARGV[4], now)
  end
end
return n
