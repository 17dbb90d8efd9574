--[[
  Append to a job's standard input (`oswalk run -i`). The stream keeps the first ARGV[3] bytes
  whole, so an attempt that starts over (a retry, a job moved off a dead node) reads them from
  the start again. Past that the input is a pipe: the job is marked stdinPiped (it can no longer
  start over: requeue in include/jobs.lua ends it instead), what its reader has taken is
  trimmed (markStdinRead-1.lua), and a piece is held back while the reader is more than ARGV[7]
  bytes behind, so the stream never holds much more than that.
  KEYS[1] jobin:<id>
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] bytes kept for a new start, ARGV[4] data (may be empty),
  ARGV[5] '1' when this is the end of the input,
  ARGV[6] a tty job's new window size, "ROWS COLS", or '' (data is then empty): it goes into the
  same stream, so that the agent applies it in order with the keystrokes around it, as ssh sends
  a window change on the session's channel,
  ARGV[7] how far the reader may be behind once the input is a pipe (bytes)
  Returns the bytes sent so far. Fails with NOJOB <id> (no such job), ENDED <id> (the job is
  over), CLOSED <id> (the input has ended), HELD <id> (the reader is behind: send it again later).
]]
-- @include fail
-- @include keys
local jk = jobKey(ARGV[2])
local j = redis.call('HMGET', jk, 'state', 'stdinBytes', 'stdinClosed', 'stdinRead', 'attempt')
local state = j[1]
if not state then return fail('NOJOB', ARGV[2]) end
if state == 'succeeded' or state == 'failed' or state == 'cancelled' then return fail('ENDED', ARGV[2]) end
local sent = tonumber(j[2] or '0')
if ARGV[6] ~= '' then
  -- A terminal takes new sizes after its input has ended (`oswalk run -t` without -i).
  redis.call('XADD', KEYS[1], '*', 'w', ARGV[6])
  return sent
end
if j[3] == '1' then return fail('CLOSED', ARGV[2]) end
local total = sent + #ARGV[4]
if total > tonumber(ARGV[3]) then
  -- stdinRead is "<attempt> <bytes>": what an earlier attempt read says nothing of this one's.
  local read = 0
  local attempt, bytes = string.match(j[4] or '', '^(%d+) (%d+)$')
  if attempt == j[5] then read = tonumber(bytes) end
  if total - read > tonumber(ARGV[7]) then return fail('HELD', ARGV[2]) end
  redis.call('HSET', jk, 'stdinPiped', '1')
end
if #ARGV[4] > 0 then
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[4])
  redis.call('HSET', jk, 'stdinBytes', total)
end
if ARGV[5] == '1' then
  redis.call('XADD', KEYS[1], '*', 'eof', '1')
  redis.call('HSET', jk, 'stdinClosed', '1')
end
return total
