--[[
  Node certificates: which the control plane issued to a node and has not seen expire, and
  which were revoked before their end (`oswalk node revoke-cert`, `oswalk node remove`).
  KEYS[1] nodecerts:<node> zset: serial → notAfter (ms) of each unexpired certificate issued to it
  KEYS[2] certs:revoked hash: serial → JSON {node, notAfter, revokedAt, by}
  KEYS[3] certs:seq string: bumped by every change of certs:revoked (agents poll it)
  ARGV[1] op: issue | revoke
  issue: ARGV[2] serial, ARGV[3] notAfter (ms), ARGV[4] now (ms), ARGV[5] the serial of the
    certificate the node renewed with ('' at a join)
    Returns 1; fails with REVOKED <serial> when the renewing certificate was revoked: checked
    here, with the record, so a renewal racing a revocation either is recorded first (and
    revoked with the rest) or refused.
  revoke: ARGV[2] node, ARGV[3] now (ms), ARGV[4] who revoked
    Moves every unexpired certificate of the node to certs:revoked; returns them flat:
    serial, notAfter, serial, notAfter… (empty: the node has none).
  Both drop what has expired (a certificate past its end is refused for that alone). An unknown
  op fails with EINVAL.
]]
-- @include fail
local op = ARGV[1]

if op == 'issue' then
  local now = tonumber(ARGV[4])
  if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return fail('REVOKED', ARGV[5]) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[2])
  return 1
elseif op == 'revoke' then
  local now = tonumber(ARGV[3])
  local changed = false
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).notAfter <= now then
      redis.call('HDEL', KEYS[2], all[i])
      changed = true
    end
  end
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
  for i = 1, #live, 2 do
    redis.call('HSET', KEYS[2], live[i], cjson.encode({ node = ARGV[2], notAfter = tonumber(live[i + 1]), revokedAt = now, by = ARGV[4] }))
    changed = true
  end
  redis.call('DEL', KEYS[1])
  if changed then redis.call('INCR', KEYS[3]) end
  return live
end
return fail('EINVAL', 'unknown op ' .. tostring(op))
