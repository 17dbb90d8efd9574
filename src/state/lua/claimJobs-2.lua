--[[
  An agent takes the jobs placed on its node: each becomes running under a new fencing
  token and a lease. Only the agent run that registered last (its epoch) may claim, and
  never for a node marked down, so a zombie agent cannot start work twice.
  KEYS[1] node hash, KEYS[2] nodequeue:<node>
  ARGV[1] prefix, ARGV[2] node, ARGV[3] agent epoch, ARGV[4] max jobs, ARGV[5] now (ms), ARGV[6] lease (ms)
  Returns -1 when this agent must register again, else a flat list {id, token, attempt, spec, ...}
]]
-- @include keys
local node, now, lease = ARGV[2], tonumber(ARGV[5]), tonumber(ARGV[6])
local st = redis.call('HMGET', KEYS[1], 'agentEpoch', 'status')
if st[1] ~= ARGV[3] or st[2] == 'down' or not st[2] then return -1 end
local out = {}
local ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[4]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local jk = jobKey(id)
  local j = redis.call('HMGET', jk, 'state', 'node', 'spec')
  if j[1] == 'scheduled' and j[2] == node then
    local token = redis.call('INCR', K.fence)
    local attempt = redis.call('HINCRBY', jk, 'attempt', 1)
    redis.call('HSET', jk, 'state', 'running', 'token', token, 'startedAt', now, 'leaseExpiry', now + lease)
    redis.call('ZADD', K.leases, now + lease, id)
    redis.call('XADD', logKey(id), '*', 't', 'sys', 'd', 'attempt ' .. attempt .. ' started on ' .. node, 'n', 0)
    table.insert(out, id)
    table.insert(out, tostring(token))
    table.insert(out, tostring(attempt))
    table.insert(out, j[3])
  end
end
return out
