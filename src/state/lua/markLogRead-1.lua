--[[
  A reader following a job's log says how far it has taken the output (the o of the last entry
  it passed on) and that it is still there: appendLog-1.lua holds the job back while such a
  reader is more than its window behind. The furthest reader counts, so one slow follower
  among several (a second `oswalk logs -f`) does not hold the job.
  KEYS[1] job:<id>
  ARGV[1] bytes read (o of an entry; '' when only saying it is there), ARGV[2] now (ms, '' for Redis' clock)
  Returns 1, or 0 when the job is not running (nothing is held then).
]]
-- @include clock
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
if ARGV[1] ~= '' and tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'logRead') or '0') then
  redis.call('HSET', KEYS[1], 'logRead', ARGV[1])
end
redis.call('HSET', KEYS[1], 'logReadAt', clock(ARGV[2]))
return 1
