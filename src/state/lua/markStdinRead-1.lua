--[[
  The agent running a job has passed its standard input on up to an entry of the stream
  (pumpStdin in src/agent/stdin-pump.ts): appendStdin-1.lua holds the sender back while that is
  far behind, and once the input is a pipe (stdinPiped) the entries up to it go, since no
  attempt will read them again.
  KEYS[1] jobin:<id>
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] attempt, ARGV[4] the entry's id, ARGV[5] bytes passed
  on by this attempt so far
  Returns 1, or 0 when that attempt is not the job's running one (nothing is changed then).
]]
-- @include keys
local jk = jobKey(ARGV[2])
local j = redis.call('HMGET', jk, 'state', 'attempt', 'stdinPiped')
if j[1] ~= 'running' or j[2] ~= ARGV[3] then return 0 end
redis.call('HSET', jk, 'stdinRead', ARGV[3] .. ' ' .. ARGV[5])
if j[3] == '1' then
  -- MINID keeps ids from the one given on: the next id after the entry read.
  local ms, seq = string.match(ARGV[4], '^(%d+)-(%d+)$')
  redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. (tonumber(seq) + 1))
end
return 1
