-- nodes:room (src/state/keys.ts): every node that can take a job now — ready, with its mount of
-- the cluster filesystem up — scored by its free milliCPUs (capacity less reservations). Every
-- step that changes a node's status, capacity, mount or reservations calls indexRoom, so that
-- looking for a node with room reads the few that have some, not every node of the cluster.
-- P: the key prefix (a script without the job includes passes its own); node: the node's name.
local function indexRoom(P, node)
  local nd = redis.call('HMGET', P .. 'node:' .. node, 'status', 'cpus', 'mountReady')
  if nd[1] ~= 'ready' or nd[3] == 'false' or not nd[2] then
    redis.call('ZREM', P .. 'nodes:room', node)
    return
  end
  local a = redis.call('HGET', P .. 'alloc:' .. node, 'milliCpus')
  redis.call('ZADD', P .. 'nodes:room', math.floor(tonumber(nd[2]) * 1000 + 0.5) - (tonumber(a) or 0), node)
end

-- The prefix of `key`, a key named `<prefix><suffix>` (for scripts handed only keys).
local function prefixOf(key, suffix)
  return string.sub(key, 1, #key - #suffix)
end
