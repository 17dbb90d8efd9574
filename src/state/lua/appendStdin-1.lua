--[[
  Append to a job's standard input (`oswalk run -i`). The stream keeps all of it, so an
  attempt that starts over (a retry, a job moved off a dead node) reads it from the start
  again; hence the cap.
  KEYS[1] jobin:<id>
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] max bytes in all, ARGV[4] data (may be empty),
  ARGV[5] '1' when this is the end of the input,
  ARGV[6] a tty job's new window size, "ROWS COLS", or '' (data is then empty): it goes into the
  same stream, so that the agent applies it in order with the keystrokes around it, as ssh sends
  a window change on the session's channel
  Returns the bytes now held. Fails with NOJOB <id> (no such job), ENDED <id> (the job is over),
  CLOSED <id> (the input has ended), TOOBIG <id> (past the cap).
]]
-- @include fail
-- @include keys
local jk = jobKey(ARGV[2])
local state = redis.call('HGET', jk, 'state')
if not state then return fail('NOJOB', ARGV[2]) end
if state == 'succeeded' or state == 'failed' or state == 'cancelled' then return fail('ENDED', ARGV[2]) end
if ARGV[6] ~= '' then
  -- A terminal takes new sizes after its input has ended (`oswalk run -t` without -i).
  redis.call('XADD', KEYS[1], '*', 'w', ARGV[6])
  return tonumber(redis.call('HGET', jk, 'stdinBytes') or '0')
end
if redis.call('HGET', jk, 'stdinClosed') == '1' then return fail('CLOSED', ARGV[2]) end
local held = tonumber(redis.call('HGET', jk, 'stdinBytes') or '0') + #ARGV[4]
if held > tonumber(ARGV[3]) then return fail('TOOBIG', ARGV[2]) end
if #ARGV[4] > 0 then
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[4])
  redis.call('HSET', jk, 'stdinBytes', held)
end
if ARGV[5] == '1' then
  redis.call('XADD', KEYS[1], '*', 'eof', '1')
  redis.call('HSET', jk, 'stdinClosed', '1')
end
return held
