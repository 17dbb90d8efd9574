--[[
  A heartbeat with the node's current load. A heartbeat from an agent epoch that is not
  the current one (a previous run of a restarted agent) is refused, and so is one for a
  node the monitor has marked down: that agent must register again, which makes it
  clean up what it ran before.
  The answer is the node timeout in force (the leading monitor's, cluster hash), also kept in
  the node record: the agent kills its jobs before that long has passed since it sent this
  heartbeat (src/agent/fence.ts), and the monitor never marks the node down sooner than the
  timeout its agent was last told, so the kill always comes before the requeue.
  Once a minute it also adds the node's load to its history (the dashboard's charts of the last
  hour): the first heartbeat at least HISTORY_EVERY_MS after the last sample does.
  KEYS[1] node hash, KEYS[2] heartbeats zset, KEYS[3] cluster hash, KEYS[4] the node's history list
  ARGV[1] key prefix, ARGV[2] node name, ARGV[3] now (ms, '' for Redis' clock), ARGV[4] agent epoch,
  ARGV[5..] field/value pairs
  Returns the node timeout (ms). Fails with STALE_EPOCH <node> when the agent must re-register.
]]
-- @include fail
-- @include clock
-- @include room
local HISTORY_EVERY_MS = 60000
local HISTORY_SAMPLES = 60
local name, now, epoch = ARGV[2], clock(ARGV[3]), ARGV[4]
local rec = redis.call('HMGET', KEYS[1], 'agentEpoch', 'status', 'mountReady', 'historyAt')
if rec[1] ~= epoch or rec[2] == 'down' or rec[2] == false then
  return fail('STALE_EPOCH', name)
end
local mountChanged = false
local load = {}
for i = 5, #ARGV, 2 do
  if ARGV[i] == 'mountReady' and ARGV[i + 1] ~= rec[3] then mountChanged = true end
  load[ARGV[i]] = ARGV[i + 1]
end
local timeout = tonumber(redis.call('HGET', KEYS[3], 'nodeTimeoutMs') or '5000')
local sample = now - tonumber(rec[4] or '0') >= HISTORY_EVERY_MS
-- One write for the whole record.
redis.call('HSET', KEYS[1], 'lastHeartbeat', now, 'nodeTimeoutMs', timeout, 'historyAt', sample and now or rec[4] or 0, unpack(ARGV, 5))
if sample then
  -- Newest first: time, load average, CPUs its jobs used, memory used (bytes).
  redis.call('LPUSH', KEYS[4], now .. ' ' .. (load.load1 or '0') .. ' ' .. (load.usedCpus or '0') .. ' ' .. (load.memoryUsedBytes or '0'))
  redis.call('LTRIM', KEYS[4], 0, HISTORY_SAMPLES - 1)
end
-- A node whose mount went down (or came back) has no room (or has it again).
if mountChanged then indexRoom(name) end
redis.call('ZADD', KEYS[2], now, name)
return timeout
