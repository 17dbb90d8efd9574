--[[
  Drain a node: no new placements; batch jobs already there run to the end (killing them
  would throw work away and they finish on their own), while service replicas, which never
  finish, move: a placed one is requeued at once, a running one is asked to stop (its agent
  stops it and the report requeues it elsewhere).
  KEYS[1] node hash
  ARGV[1] prefix, ARGV[2] node, ARGV[3] now (ms)
  A node that is down is cordoned too: it comes back draining (its jobs moved already).
  Returns {status now in force, replicas moved, jobs left to finish}. Fails with NONODE <node>
  for an unknown node.
]]
-- @include fail
-- @include keys
-- @include jobs
local node, now = ARGV[2], tonumber(ARGV[3])
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return fail('NONODE', node) end
redis.call('HSET', KEYS[1], 'cordoned', '1')
if st == 'down' then return { 'down', 0, 0 } end
redis.call('HSET', KEYS[1], 'status', 'draining')
indexRoom(node)
local moved, left = 0, 0
for _, id in ipairs(nodeJobIds(node)) do
  local jk = jobKey(id)
  local j = redis.call('HMGET', jk, 'state', 'restartPolicy')
  if j[2] ~= 'Always' then
    left = left + 1
  elseif j[1] == 'scheduled' then
    requeue(id, 'moved off draining node ' .. node, now, 0)
    moved = moved + 1
  elseif j[1] == 'running' then
    redis.call('HSET', jk, 'cancelRequested', 'move')
    moved = moved + 1
  end
end
if moved > 0 then wake(nodeStopWakeKey(node)) end
return { 'draining', moved, left }
