--[[
  Renew the leases of the jobs an agent runs, all in one step. A lease whose token no
  longer matches is not renewed: the job was requeued or ended and the agent must stop it.
  KEYS[1] leases:<node>
  ARGV[1] prefix, ARGV[2] now (ms, '' for Redis' clock), ARGV[3] lease (ms), ARGV[4] node, ARGV[5..] jobId, token pairs
  Returns one code per job: 1 renewed, 2 renewed but cancel requested (stop and complete),
  3 renewed but asked to move (drain: stop, it is placed elsewhere), 0 lost (stop, do not complete).
]]
-- @include clock
-- @include keys
local now, lease = clock(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 5, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = jobKey(id)
  local j = redis.call('HMGET', jk, 'state', 'token', 'cancelRequested', 'node')
  if j[1] == 'running' and j[2] == token and j[4] == ARGV[4] then
    redis.call('HSET', jk, 'leaseExpiry', now + lease)
    redis.call('ZADD', KEYS[1], now + lease, id)
    if j[3] == '1' then table.insert(out, 2)
    elseif j[3] == 'move' then table.insert(out, 3)
    else table.insert(out, 1) end
  else
    table.insert(out, 0)
  end
end
return out
