--[[
  Append output to a job's log stream, keeping at most maxBytes of it: the oldest entries
  are trimmed (the tail is what people read) and the dropped bytes are counted on the job,
  so a job printing a gigabyte costs Redis a few megabytes.
  A reader following the job (logRead: how far it has taken the output, counted in bytes the
  job ever printed; logReadAt: when its connection last said it is there) holds the job back
  instead: while it is more than the window behind, nothing is appended, and the agent keeps the
  output (and so the job, blocked in write) until it catches up, as a pipe to a slow reader
  does. A reader gone for readerFreshMs holds nothing.
  Each entry carries o, the bytes the job printed up to its end, which readers report back.
  KEYS[1] joblog:<id>
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] max bytes kept, ARGV[4] attempt,
  ARGV[5] bytes the agent itself dropped before sending, ARGV[6] reader window (bytes),
  ARGV[7] readerFreshMs, ARGV[8] now (ms, '' for Redis' clock, which readers mark by too),
  ARGV[9..] stream ('out'|'err'), data pairs
  Returns the bytes now kept; the id of the last entry trimmed goes to the job's logTrimmed.
  Fails with NOT_RUNNING <id> (refused: the attempt is not the job's running one), HELD <id>
  (a reader is behind, nothing was appended: send it again later).
]]
-- @include fail
-- @include clock
-- @include keys
local jk = jobKey(ARGV[2])
-- An attempt that lost its lease (its node was cut off) may print on after the job was
-- requeued, ran elsewhere or even ended: its output is not the job's any more.
local job = redis.call('HMGET', jk, 'state', 'attempt', 'logTotal', 'logRead', 'logReadAt')
if job[1] ~= 'running' or job[2] ~= ARGV[4] then return fail('NOT_RUNNING', ARGV[2]) end
local total = tonumber(job[3] or '0')
if tonumber(job[5] or '0') >= clock(ARGV[8]) - tonumber(ARGV[7]) and total - tonumber(job[4] or '0') > tonumber(ARGV[6]) then
  return fail('HELD', ARGV[2])
end
local maxBytes = tonumber(ARGV[3])
if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', jk, 'logDropped', ARGV[5]) end
local kept = tonumber(redis.call('HGET', jk, 'logBytes') or '0')
-- Each entry's id and size also go to a list beside the stream, so that trimming reads those
-- few bytes and never the output itself (a walk of the stream copied every entry into Lua).
local sizes = logSizesKey(ARGV[2])
for i = 9, #ARGV, 2 do
  local n = #ARGV[i + 1]
  total = total + n
  local eid = redis.call('XADD', KEYS[1], '*', 't', ARGV[i], 'd', ARGV[i + 1], 'n', n, 'a', ARGV[4], 'o', total)
  redis.call('RPUSH', sizes, eid .. ' ' .. n)
  kept = kept + n
end
redis.call('HSET', jk, 'logTotal', total)
if kept > maxBytes then
  -- Drop the oldest entries until enough is dropped, then cut with one XTRIM MINID (which also
  -- takes the system lines among them).
  local excess, dropped, last, cut = kept - maxBytes, 0, nil, nil
  while not cut do
    local head = redis.call('LINDEX', sizes, 0)
    if not head then break end
    local eid, n = string.match(head, '^(%S+) (%d+)$')
    if dropped >= excess then
      cut = eid
    else
      redis.call('LPOP', sizes)
      dropped = dropped + tonumber(n)
      last = eid
    end
  end
  if cut then
    redis.call('XTRIM', KEYS[1], 'MINID', cut)
  else
    redis.call('DEL', KEYS[1], sizes)
  end
  kept = kept - dropped
  redis.call('HINCRBY', jk, 'logDropped', dropped)
  -- The last entry dropped: a reader still behind it has lost what lay between (logs route).
  if last then redis.call('HSET', jk, 'logTrimmed', last) end
end
redis.call('HSET', jk, 'logBytes', kept)
return kept
