--[[
  Read-only: what a scheduling pass starts from, in one round trip — every node record
  with what is reserved on it, and the ids at the head of the pending queue.
  KEYS[1] nodes set
  ARGV[1] prefix, ARGV[2] how many pending ids
  Returns {{{node hash as flat field/value list}, {milliCpus, memoryBytes, jobs}}, ...}, {ids...}}
]]
local P = ARGV[1]
local nodes = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local h = redis.call('HGETALL', P .. 'node:' .. name)
  if #h > 0 then
    local a = redis.call('HMGET', P .. 'alloc:' .. name, 'milliCpus', 'memoryBytes', 'jobs')
    table.insert(nodes, { h, { a[1] or '0', a[2] or '0', a[3] or '0' } })
  end
end
return { nodes, redis.call('ZRANGE', P .. 'jobs:pending', 0, tonumber(ARGV[2]) - 1) }
