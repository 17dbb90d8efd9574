--[[
  Cancel a job. Pending, delayed or placed-but-unclaimed jobs end at once; a running job
  is marked, its agent is woken, stops it and reports, and that report records 'cancelled'.
  KEYS[1] job hash
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] now (ms)
  Returns cancelled | cancelling | the terminal state it already had. Fails with NOJOB <id> for
  an unknown job.
]]
-- @include fail
-- @include keys
-- @include jobs
return cancel(ARGV[2], tonumber(ARGV[3]), 'cancelled before it started') or fail('NOJOB', ARGV[2])
