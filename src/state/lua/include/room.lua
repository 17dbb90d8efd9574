-- nodes:room (src/state/keys.ts): every node that can take a job now — ready, with its mount of
-- the cluster filesystem up — scored by its free milliCPUs (capacity less reservations). Every
-- step that changes a node's status, capacity, mount or reservations calls indexRoom, so that
-- looking for a node with room reads the few that have some, not every node of the cluster.
-- The key names come from include/keys.lua, so every script that includes this one takes the
-- key prefix as ARGV[1].
-- @include keys
local function indexRoom(node)
  local nd = redis.call('HMGET', nodeKey(node), 'status', 'cpus', 'mountReady')
  if nd[1] ~= 'ready' or nd[3] == 'false' or not nd[2] then
    redis.call('ZREM', K.room, node)
    return
  end
  local a = redis.call('HGET', allocKey(node), 'milliCpus')
  redis.call('ZADD', K.room, math.floor(tonumber(nd[2]) * 1000 + 0.5) - (tonumber(a) or 0), node)
end
