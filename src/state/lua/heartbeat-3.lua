--[[
  A heartbeat with the node's current load. A heartbeat from an agent epoch that is not
  the current one (a previous run of a restarted agent) is refused, and so is one for a
  node the monitor has marked down: that agent must register again, which makes it
  clean up what it ran before.
  The answer is the node timeout in force (the leading monitor's, cluster hash), also kept in
  the node record: the agent kills its jobs before that long has passed since it sent this
  heartbeat (src/agent/fence.ts), and the monitor never marks the node down sooner than the
  timeout its agent was last told, so the kill always comes before the requeue.
  KEYS[1] node hash, KEYS[2] heartbeats zset, KEYS[3] cluster hash
  ARGV[1] node name, ARGV[2] now (ms, '' for Redis' clock), ARGV[3] agent epoch, ARGV[4..] field/value pairs
  Returns the node timeout (ms). Fails with STALE_EPOCH <node> when the agent must re-register.
]]
-- @include fail
-- @include clock
-- @include room
local now = clock(ARGV[2])
local rec = redis.call('HMGET', KEYS[1], 'agentEpoch', 'status', 'mountReady')
if rec[1] ~= ARGV[3] or rec[2] == 'down' or rec[2] == false then
  return fail('STALE_EPOCH', ARGV[1])
end
local mountChanged = false
for i = 4, #ARGV, 2 do
  if ARGV[i] == 'mountReady' and ARGV[i + 1] ~= rec[3] then mountChanged = true end
end
local timeout = tonumber(redis.call('HGET', KEYS[3], 'nodeTimeoutMs') or '5000')
-- One write for the whole record.
redis.call('HSET', KEYS[1], 'lastHeartbeat', now, 'nodeTimeoutMs', timeout, unpack(ARGV, 4))
-- A node whose mount went down (or came back) has no room (or has it again).
if mountChanged then indexRoom(prefixOf(KEYS[1], 'node:' .. ARGV[1]), ARGV[1]) end
redis.call('ZADD', KEYS[2], now, ARGV[1])
return timeout
