--[[
  Append output to a job's log stream, keeping at most maxBytes of it: the oldest entries
  are trimmed (the tail is what people read) and the dropped bytes are counted on the job,
  so a job printing a gigabyte costs Redis a few megabytes.
  KEYS[1] joblog:<id>
  ARGV[1] prefix, ARGV[2] job id, ARGV[3] max bytes kept, ARGV[4] attempt,
  ARGV[5] bytes the agent itself dropped before sending, ARGV[6..] stream ('out'|'err'), data pairs
  Returns the bytes now kept (-1: refused, the attempt is not the job's running one); the id of
  the last entry trimmed goes to the job's logTrimmed.
]]
-- @include keys
local jk = jobKey(ARGV[2])
-- An attempt that lost its lease (its node was cut off) may print on after the job was
-- requeued, ran elsewhere or even ended: its output is not the job's any more.
local job = redis.call('HMGET', jk, 'state', 'attempt')
if job[1] ~= 'running' or job[2] ~= ARGV[4] then return -1 end
local maxBytes = tonumber(ARGV[3])
if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', jk, 'logDropped', ARGV[5]) end
local kept = tonumber(redis.call('HGET', jk, 'logBytes') or '0')
for i = 6, #ARGV, 2 do
  local n = #ARGV[i + 1]
  redis.call('XADD', KEYS[1], '*', 't', ARGV[i], 'd', ARGV[i + 1], 'n', n, 'a', ARGV[4])
  kept = kept + n
end
if kept > maxBytes then
  -- Walk from the oldest entry until enough is dropped, then cut with one XTRIM MINID.
  local excess, dropped, from, cut = kept - maxBytes, 0, '-', nil
  while not cut do
    local batch = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 64)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
      if dropped >= excess then cut = e[1]; break end
      local f = e[2]
      for k = 1, #f, 2 do
        if f[k] == 'n' then dropped = dropped + tonumber(f[k + 1]) end
      end
      from = '(' .. e[1]
    end
  end
  if cut then
    redis.call('XTRIM', KEYS[1], 'MINID', cut)
  else
    redis.call('DEL', KEYS[1])
  end
  kept = kept - dropped
  redis.call('HINCRBY', jk, 'logDropped', dropped)
  -- The last entry dropped: a reader still behind it has lost what lay between (logs route).
  if from ~= '-' then redis.call('HSET', jk, 'logTrimmed', string.sub(from, 2)) end
end
redis.call('HSET', jk, 'logBytes', kept)
return kept
