--[[
  An agent takes the jobs placed on its node: each becomes running under a new fencing
  token and a lease. Only the agent run that registered last (its epoch) may claim, and
  never for a node marked down, so a zombie agent cannot start work twice.
  KEYS[1] node hash, KEYS[2] nodequeue:<node>
  ARGV[1] prefix, ARGV[2] node, ARGV[3] agent epoch, ARGV[4] max jobs, ARGV[5] now (ms, '' for Redis' clock), ARGV[6] lease (ms)
  Returns a flat list {id, token, attempt, spec, ...}. Fails with STALE_EPOCH <node> when this
  agent must register again.
]]
-- @include fail
-- @include clock
-- @include keys
-- @include jobs
local node, now, lease = ARGV[2], clock(ARGV[5]), tonumber(ARGV[6])
if not agentCurrent(node, ARGV[3]) then return fail('STALE_EPOCH', node) end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[4]) - 1)) do
  redis.call('ZREM', KEYS[2], id)
  local j = redis.call('HMGET', jobKey(id), 'state', 'node')
  if j[1] == 'scheduled' and j[2] == node then
    for _, v in ipairs(start(id, node, now, lease)) do table.insert(out, v) end
  end
end
return out
