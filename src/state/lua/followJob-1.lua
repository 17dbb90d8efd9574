--[[
  Someone follows the job's log: from now on its end writes an end line into the log stream
  (finish() in include/jobs.lua), which wakes the follower's blocking read. Asked and marked in
  one step, so the end cannot slip between the two: a job that has already ended answers with
  its state and the follower builds the end line from the record.
  KEYS[1] job hash
  ARGV[1] prefix
  Returns the job's state. Fails with NOJOB <job hash> for an unknown job.
]]
-- @include fail
-- @include keys
-- @include jobs
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return fail('NOJOB', KEYS[1]) end
if not TERMINAL[state] then redis.call('HSET', KEYS[1], 'follow', '1') end
return state
