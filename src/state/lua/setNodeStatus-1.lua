--[[
  Operator status change of an existing node (drain / uncordon), kept as the node's cordon
  too. A node the monitor has marked down stays down until its agent registers again, and then
  takes the status set here.
  KEYS[1] node hash; ARGV[1] key prefix, ARGV[2] new status, ARGV[3] node name
  Returns the status now in force. Fails with NONODE <node hash> when there is no such node.
]]
-- @include fail
-- @include room
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return fail('NONODE', KEYS[1]) end
local status, name = ARGV[2], ARGV[3]
redis.call('HSET', KEYS[1], 'cordoned', status == 'draining' and '1' or '0')
if cur == 'down' then return 'down' end
redis.call('HSET', KEYS[1], 'status', status)
indexRoom(name)
return status
