--[[
  An agent (re)joins: write its node record, mark it ready unless an operator drained it (the
  cordon outlasts the node going down and its agent restarting, as kubectl's does),
  and bump its epoch so everything the previous run of this agent held can be told apart.
  KEYS[1] nodes set, KEYS[2] node hash, KEYS[3] heartbeats zset, KEYS[4] obj:Node (manifests)
  ARGV[1] key prefix, ARGV[2] node name, ARGV[3] now (ms, '' for Redis' clock), ARGV[4..] field/value
  pairs of the record
  Returns the new epoch.
]]
-- @include clock
-- @include nodes
-- @include room
local name, now = ARGV[2], clock(ARGV[3])
redis.call('SADD', KEYS[1], name)
-- What the previous run said of its mount and its default image is not this run's (it may run
-- without either).
redis.call('HDEL', KEYS[2], 'mountReady', 'mountError', 'defaultImage')
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
effectiveNode(KEYS[2], KEYS[4], name)
redis.call('HSET', KEYS[2], 'status', redis.call('HGET', KEYS[2], 'cordoned') == '1' and 'draining' or 'ready')
if not redis.call('HGET', KEYS[2], 'registeredAt') then
  redis.call('HSET', KEYS[2], 'registeredAt', now)
end
redis.call('HSET', KEYS[2], 'lastHeartbeat', now)
indexRoom(name)
redis.call('ZADD', KEYS[3], now, name)
return redis.call('HINCRBY', KEYS[2], 'agentEpoch', 1)
