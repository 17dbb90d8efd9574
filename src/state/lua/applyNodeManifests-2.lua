--[[
  After Node manifests were applied: recompute the labels and capacity the scheduler sees
  for every registered node (a node not registered yet gets them when its agent joins).
  KEYS[1] nodes set, KEYS[2] obj:Node; ARGV[1] key prefix
  Returns how many nodes were updated.
]]
-- @include keys
-- @include nodes
-- @include room
local n = 0
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  effectiveNode(nodeKey(name), KEYS[2], name)
  indexRoom(name)
  n = n + 1
end
return n
