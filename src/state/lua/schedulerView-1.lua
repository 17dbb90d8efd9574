--[[
  Read-only: what a scheduling pass starts from, in one round trip — the ids at the head of the
  pending queue and node records with what is reserved on each: every node ('all'), or only
  those the room index (include/room.lua) says have a free CPU ('room'), so that a pass over a
  large cluster reads the nodes it can place on, not all of them. With 'room', no node is read
  when the queue is empty: an idle pass costs a lookup.
  KEYS[1] nodes set
  ARGV[1] prefix, ARGV[2] how many pending ids, ARGV[3] 'all' | 'room'
  Returns {{{node hash as flat field/value list}, {milliCpus, memoryBytes, jobs}}, ...}, {ids...}}
]]
-- @include keys
local ids = redis.call('ZRANGE', K.pending, 0, tonumber(ARGV[2]) - 1)
local nodes = {}
if #ids == 0 and ARGV[3] ~= 'all' then return { nodes, ids } end
local names
if ARGV[3] == 'all' then
  names = redis.call('SMEMBERS', KEYS[1])
else
  names = redis.call('ZRANGEBYSCORE', K.room, 1, '+inf')
end
for _, name in ipairs(names) do
  local h = redis.call('HGETALL', nodeKey(name))
  if #h > 0 then
    local a = redis.call('HMGET', allocKey(name), 'milliCpus', 'memoryBytes', 'jobs')
    table.insert(nodes, { h, { a[1] or '0', a[2] or '0', a[3] or '0' } })
  end
end
return { nodes, ids }
